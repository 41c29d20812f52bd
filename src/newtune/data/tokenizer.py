"""Load a tokenizer (HF dir, .gguf, embedded, hub id), read its special-token facts, fingerprint it.

No torch here: preprocessing must stay light.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from newtune.data.types import TokenizerInfo


def tokenizer_info(tok: Any) -> TokenizerInfo:
    """Whether the tokenizer adds BOS/EOS by itself, read from what it actually does."""
    probe = tok("a", add_special_tokens=True)["input_ids"]
    bare = tok("a", add_special_tokens=False)["input_ids"]
    add_bos = tok.bos_token_id is not None and len(probe) > len(bare) and probe[0] == tok.bos_token_id
    add_eos = tok.eos_token_id is not None and len(probe) > len(bare) and probe[-1] == tok.eos_token_id
    return TokenizerInfo(bos_token=tok.bos_token, eos_token=tok.eos_token, add_bos=add_bos, add_eos=add_eos)


def fingerprint(tok: Any) -> str:
    """sha256 over everything about the tokenizer that changes tokens: vocab, merges, specials, template."""
    h = hashlib.sha256()
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    h.update(json.dumps(tok.special_tokens_map, sort_keys=True, default=str).encode())
    h.update(json.dumps(tokenizer_info(tok).__repr__()).encode())
    h.update((getattr(tok, "chat_template", None) or "").encode() if isinstance(getattr(tok, "chat_template", None), str | None) else json.dumps(tok.chat_template).encode())
    h.update(getattr(tok, "padding_side", "").encode())
    return h.hexdigest()


def load_tokenizer(source: str | None, trust_remote_code: bool = False) -> Any:
    """A fast tokenizer from the embedded model, a .gguf file, a local HF directory or a hub id."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from newtune import embedded
    from newtune.errors import ModelError

    if embedded.is_embedded(source):
        conv = embedded.converted_dir()
        if (conv / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(conv)
        gguf = embedded.gguf_path()
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    path = Path(source)
    if path.suffix == ".gguf":
        if not path.exists():
            raise ModelError("base_model", f"GGUF file {path} does not exist")
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if path.exists():
        try:
            return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise ModelError(str(path), f"cannot load a tokenizer from this directory: {e}") from None
    return _from_hub(source, trust_remote_code)


def _from_hub(repo_id: str, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    from newtune.errors import ModelError

    try:
        return AutoTokenizer.from_pretrained(repo_id, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise ModelError(
            repo_id,
            f"not a local path, and the model hub could not provide it ({str(e).splitlines()[0]})",
            "when offline, download the model elsewhere and set base_model to its local directory "
            "(or omit base_model to use the embedded SmolLM2-135M-Instruct)",
        ) from None
