"""Load a tokenizer (HF dir, .gguf, embedded, hub id), apply the config's tokens, read its facts, fingerprint it.

No torch here: preprocessing must stay light. `light=True` loads plain `tokenizer.json` directories with
the `tokenizers` library (LightTokenizer) instead of transformers, which imports torch; it produces the
same ids, and is used only for tokenizer classes known to add nothing on top of tokenizer.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.data.types import Tokenizer, TokenizerInfo
from newtune.feedback import step

if TYPE_CHECKING:
    from newtune.config.model import ModelConfig

SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token")
# tokenizer_config classes whose transformers loader is exactly tokenizer.json plus the special tokens
PLAIN_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
MEMO_SIZE, MEMO_TEXT = 50_000, 200  # LightTokenizer remembers the ids of up to 50k texts of <= 200 characters


def tokenizer_info(tok: Tokenizer) -> TokenizerInfo:
    """Whether the tokenizer adds BOS/EOS by itself, read from what it actually does."""
    probe = tok("a", add_special_tokens=True)["input_ids"]
    bare = tok("a", add_special_tokens=False)["input_ids"]
    add_bos = tok.bos_token_id is not None and len(probe) > len(bare) and probe[0] == tok.bos_token_id
    add_eos = tok.eos_token_id is not None and len(probe) > len(bare) and probe[-1] == tok.eos_token_id
    return TokenizerInfo(bos_token=tok.bos_token, eos_token=tok.eos_token, add_bos=add_bos, add_eos=add_eos,
                         vocab_size=len(tok))


def fingerprint(tok: Tokenizer) -> str:
    """sha256 over what changes tokens: the tokenizer JSON (less runtime padding/truncation), specials, template.

    The same for a LightTokenizer and transformers' tokenizer of the same directory, so `preprocess`
    and `train` share one cache entry.
    """
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is not None:
        body = _without_runtime_settings(backend.to_str())
    else:
        body = json.dumps(sorted(tok.get_vocab().items()))
    specials = {name: getattr(tok, name, None) for name in SPECIAL_NAMES}
    template = getattr(tok, "chat_template", None)
    h = hashlib.sha256()
    for part in (body, json.dumps(specials, sort_keys=True), repr(tokenizer_info(tok)),
                 template if isinstance(template, str | None) and template else json.dumps(template, default=str)):
        h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def _without_runtime_settings(spec: str) -> str:
    """The tokenizer JSON with the top-level "truncation" and "padding" values (set per call) blanked."""
    decoder = json.JSONDecoder()
    for key in ('"truncation":', '"padding":'):
        at = spec.find(key, 0, 4096)
        if at >= 0:
            start = at + len(key)
            _, end = decoder.raw_decode(spec, start)
            spec = spec[:start] + "null" + spec[end:]
    return spec


def tokenizer_for(model_cfg: ModelConfig, light: bool = False) -> Tokenizer:
    """The run's tokenizer: loaded, `special_tokens` and `tokens` from the config applied, a pad token set."""
    tok = load_tokenizer(model_cfg.tokenizer_config or model_cfg.base_model, model_cfg.trust_remote_code, light=light,
                         legacy=model_cfg.tokenizer_legacy, key="tokenizer_config" if model_cfg.tokenizer_config else "base_model")
    if model_cfg.special_tokens is not None:
        specials = model_cfg.special_tokens.model_dump(exclude_none=True)
        extra = specials.pop("additional_special_tokens", None)
        for name, text in specials.items():
            set_special(tok, name, text)
        if extra:
            add_tokens(tok, extra, special=True)
    if model_cfg.tokens:
        add_tokens(tok, model_cfg.tokens, special=False)
    if tok.pad_token is None:
        set_special(tok, "pad_token", tok.eos_token if tok.eos_token is not None else tok.unk_token)
    return tok


def set_special(tok: Tokenizer, name: str, text: str | None) -> None:
    """Make `text` the tokenizer's `name` (bos_token, ...), adding it to the vocabulary if new (as axolotl)."""
    if text is None:
        return
    if isinstance(tok, LightTokenizer):
        tok.set_special(name, text)
        return
    from tokenizers import AddedToken

    tok.add_special_tokens({name: AddedToken(text, rstrip=False, lstrip=False, normalized=False)})


def add_tokens(tok: Tokenizer, texts: list[str], special: bool) -> None:
    from tokenizers import AddedToken

    new = [AddedToken(t, rstrip=False, lstrip=False, normalized=False, special=special) for t in texts]
    if isinstance(tok, LightTokenizer):
        tok.add_tokens(new, special)
    elif special:
        tok.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    else:
        tok.add_tokens(new)


def load_tokenizer(source: str | None, trust_remote_code: bool = False, light: bool = False,
                   legacy: bool | None = None, key: str = "base_model") -> Tokenizer:
    """A fast tokenizer from the embedded model, a .gguf file, a local HF directory or a hub id.

    `legacy` (tokenizer_legacy) is passed to transformers, which rebuilds SentencePiece-based tokenizers
    with or without the legacy handling of text after special tokens.
    """
    from newtune import embedded
    from newtune.errors import ModelError
    from newtune.paths import model_not_found, model_path_missing

    if embedded.is_embedded(source):
        conv = embedded.converted_dir()
        if (conv / "tokenizer_config.json").exists():
            return _from_dir(conv, False, light, legacy)
        return _from_gguf(embedded.gguf_path(), light)
    if model_path_missing(source):
        raise ModelError(*model_not_found(key, source))
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        return _from_gguf(path, light)
    if path.exists():
        return _from_dir(path, trust_remote_code, light, legacy)
    return _from_hub(source, trust_remote_code)


def _from_dir(path: Path, trust_remote_code: bool, light: bool, legacy: bool | None = None) -> Tokenizer:
    from newtune.errors import ModelError

    if light and legacy is None and LightTokenizer.can_load(path):
        return LightTokenizer.from_dir(path)
    convertible = light and legacy is None and not _has_remote_code(path)
    if convertible:
        files = sorted(f for f in path.iterdir() if f.name.startswith(("tokenizer", "special_tokens", "added_tokens",
                                                                       "chat_template", "vocab", "merges")))
        saved = _converted_dir(files)
        if LightTokenizer.can_load(saved):
            return LightTokenizer.from_dir(saved)
    from transformers import AutoTokenizer

    extra = {} if legacy is None else {"legacy": legacy}
    # A Mistral-family config.json makes transformers hand the directory to mistral-common's backend when that
    # package is installed (and its tokenizer files allow), to its own tokenizer otherwise: different ids for the
    # same text (special-token strings, runs of spaces). Where the directory has transformers' own files, newtune
    # always takes transformers' tokenizer, so the ids never depend on what else is installed.
    if (path / "tokenizer.json").exists() or (path / "tokenizer.model").exists():
        extra["mistral_format"] = False
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **extra)
    except (OSError, ValueError) as e:
        raise ModelError(str(path), f"cannot load a tokenizer from this directory: {e}") from None
    except ImportError as e:  # e.g. mistral-common installed without its requirements (tiktoken)
        raise ModelError(str(path), f"loading this tokenizer needs a package that is missing: {e}",
                         f"install it with its dependencies (pip install {e.name or 'PACKAGE'})") from None
    if convertible and getattr(tok, "backend_tokenizer", None) is not None:
        _save_plain(tok, saved)
    return tok


def _has_remote_code(path: Path) -> bool:
    cfg = path / "tokenizer_config.json"
    return cfg.exists() and "auto_map" in json.loads(cfg.read_text(encoding="utf-8"))


def _converted_dir(files: list[Path]) -> Path:
    """Where a tokenizer transformers built from these files is kept as plain tokenizer.json (see _save_plain)."""
    from newtune.embedded import cache_root

    ident = "|".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    return cache_root() / "tokenizers" / hashlib.sha256(ident.encode()).hexdigest()[:16]


def _save_plain(tok: Tokenizer, saved: Path) -> None:
    """Save what transformers built (its tokenizer.json holds the class's normalizer, pre-tokenizer and the
    BOS/EOS post-processor) with a plain tokenizer_config, so later loads need only `tokenizers`: the same
    ids by construction (tests compare both on the Mistral tokenizer), without importing transformers or torch."""
    import shutil
    import tempfile

    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=saved.parent))
    tok.save_pretrained(tmp)
    cfg_file = tmp / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "TokenizersBackend"
    for key in ("add_bos_token", "add_eos_token", "auto_map"):  # their effect is in tokenizer.json now
        cfg.pop(key, None)
    cfg_file.write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(saved, ignore_errors=True)
    tmp.rename(saved)


def _from_gguf(gguf: Path, light: bool) -> Tokenizer:
    """A GGUF's tokenizer; with `light`, converted once into a cached tokenizer.json directory."""
    saved = _converted_dir([gguf])
    if light and LightTokenizer.can_load(saved):
        return LightTokenizer.from_dir(saved)
    from transformers import AutoTokenizer  # reading a GGUF's tokenizer needs transformers, the first time

    with step(f"reading the tokenizer of {gguf.name}" + (" (once)" if light else "")):
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if light:
        _save_plain(tok, saved)
    return tok


def _from_hub(repo_id: str, trust_remote_code: bool) -> Tokenizer:
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


class LightTokenizer:
    """tokenizer.json + tokenizer_config.json through `tokenizers` alone: the calls the data path makes, same ids."""

    padding_side = "right"

    def __init__(self, backend: Any, config: dict, chat_template: Any) -> None:
        self._tokenizer = self.backend_tokenizer = backend
        self._memo: dict[bool, dict[str, list[int]]] = {True: {}, False: {}}
        self.chat_template = chat_template
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.name_or_path = config.get("name_or_path", "")
        self._specials: dict[str, str | None] = {n: _token_text(config.get(n)) for n in SPECIAL_NAMES}
        extra = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
        self.additional_special_tokens = [_token_text(t) for t in extra] if isinstance(extra, list) else []

    @staticmethod
    def can_load(path: Path) -> bool:
        cfg_file = path / "tokenizer_config.json"
        if not (path / "tokenizer.json").exists() or not cfg_file.exists():
            return False
        cfg = json.loads(cfg_file.read_text())
        return (cfg.get("tokenizer_class") in PLAIN_CLASSES and "auto_map" not in cfg
                and "add_bos_token" not in cfg and "add_eos_token" not in cfg)

    @classmethod
    def from_dir(cls, path: Path) -> LightTokenizer:
        from tokenizers import AddedToken, Tokenizer

        backend = Tokenizer.from_file(str(path / "tokenizer.json"))
        cfg = json.loads((path / "tokenizer_config.json").read_text())
        vocab = backend.get_vocab(with_added_tokens=True)
        for info in (cfg.get("added_tokens_decoder") or {}).values():
            if info["content"] not in vocab:
                backend.add_tokens([AddedToken(info["content"], single_word=info.get("single_word", False),
                                               lstrip=info.get("lstrip", False), rstrip=info.get("rstrip", False),
                                               normalized=info.get("normalized", True), special=info.get("special", False))])
        template = cfg.get("chat_template")
        if template is None and (path / "chat_template.jinja").exists():
            template = (path / "chat_template.jinja").read_text()
        tok = cls(backend, cfg, template)
        tok.name_or_path = str(path)
        return tok

    # special tokens
    def __getattr__(self, name: str) -> Any:
        specials = self.__dict__.get("_specials", {})
        if name in specials:
            return specials[name]
        if name.endswith("_id") and name[:-3] in specials:
            text = specials[name[:-3]]
            return None if text is None else self._tokenizer.token_to_id(text)
        raise AttributeError(name)

    def set_special(self, name: str, text: str) -> None:
        if self._tokenizer.token_to_id(text) is None or text not in self.all_special_tokens:
            from tokenizers import AddedToken

            self._tokenizer.add_special_tokens([AddedToken(text, rstrip=False, lstrip=False, normalized=False,
                                                           special=True)])
        self._specials[name] = text
        self._memo = {True: {}, False: {}}

    def add_tokens(self, tokens: list[Any], special: bool) -> None:
        if special:
            self._tokenizer.add_special_tokens(tokens)
            self.additional_special_tokens += [t.content for t in tokens]
        else:
            self._tokenizer.add_tokens(tokens)
        self._memo = {True: {}, False: {}}

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: text for name, text in self._specials.items() if text is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        named = [t for t in self._specials.values() if t is not None]
        return list(dict.fromkeys(named + self.additional_special_tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self._tokenizer.token_to_id(t) for t in self.all_special_tokens]

    # encoding and decoding
    def __call__(self, text: str | list[str], add_special_tokens: bool = True, return_offsets_mapping: bool = False,
                 return_attention_mask: bool = True, truncation: bool = False, padding: bool = False,
                 return_tensors: None = None) -> dict[str, Any]:
        if truncation or padding or return_tensors is not None:
            raise TypeError("LightTokenizer does not truncate, pad or return tensors")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        out: dict[str, Any]
        if return_offsets_mapping:
            encs = self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
            out = {"input_ids": [e.ids for e in encs], "offset_mapping": [e.offsets for e in encs]}
        else:
            out = {"input_ids": self._ids(texts, add_special_tokens)}
        if single:
            out = {k: v[0] for k, v in out.items()}
        return _Encoding(out) if return_attention_mask else out

    def _ids(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        """Ids of each text; repeated short texts (a style's fixed pieces, EOS) are tokenized once.

        Exact: a text tokenized alone always gives the same ids. Callers get their own list copies.
        """
        memo = self._memo[add_special_tokens]
        if len(memo) > MEMO_SIZE:
            memo.clear()
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            encs = self._tokenizer.encode_batch_fast(missing, add_special_tokens=add_special_tokens)
            fresh = dict(zip(missing, (e.ids for e in encs), strict=True))
            memo.update((t, ids) for t, ids in fresh.items() if len(t) <= MEMO_TEXT)
        else:
            fresh = {}
        return [list(fresh[t]) if t in fresh else list(memo[t]) for t in texts]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        text = self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        if self.clean_up_tokenization_spaces:
            for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(a, b)
        return text

    def convert_ids_to_tokens(self, ids: Any) -> Any:
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        return [self._tokenizer.id_to_token(i) for i in ids]

    def convert_tokens_to_ids(self, tokens: Any) -> Any:
        if isinstance(tokens, str):
            return self._tokenizer.token_to_id(tokens)
        return [self._tokenizer.token_to_id(t) for t in tokens]

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)


class _Encoding(dict):
    """A tokenizer call's result; `attention_mask` (all ones: nothing is padded) is built only when read."""

    def __missing__(self, key: str) -> Any:
        if key != "attention_mask":
            raise KeyError(key)
        ids = self["input_ids"]
        return [1] * len(ids) if not ids or isinstance(ids[0], int) else [[1] * len(x) for x in ids]


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value
