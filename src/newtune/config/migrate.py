"""Old axolotl keys → their current form: the one-line warnings of `load_config`, and `newtune migrate`.

Each rule follows axolotl 0.21.0 (its schemas/deprecated.py, config.py and validation.py): a key it
maps to another is moved here with a warning naming the replacement; a key it refuses is refused with
that replacement (`Change.refused`), and `newtune migrate` still moves it where the move is certain.
Rules work on any mapping, so `migrate` edits ruamel's comment-keeping maps as well as plain dicts.
"""

from __future__ import annotations

import copy
import difflib
import io
import os
import re
import tempfile
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newtune.errors import ConfigError


@dataclass(frozen=True)
class Change:
    """One old key and what became of it."""

    where: str  # dotted path of the old key
    message: str  # one line, naming the replacement
    refused: bool = False  # axolotl refuses it: an error until the config is migrated
    moved: bool = True  # False: `migrate` cannot rewrite it (the user must decide); it stays as it is

    def line(self) -> str:
        return f"{self.where}: {self.message}"


def _set(m: MutableMapping, old: str, new: str, value: Any) -> None:
    """Put `new: value` where `old` was (keeping the file's key order and comments), drop `old`."""
    keys = list(m)
    if old in m and hasattr(m, "insert"):  # ruamel CommentedMap: the old key's comment stays on its line
        pos = keys.index(old)
        comment = m.ca.items.pop(old, None)
        del m[old]
        m.insert(pos, new, value)
        if comment is not None and not isinstance(value, MutableMapping):
            m.ca.items[new] = comment
        return
    if old not in m:
        m[new] = value
        return
    items = [(new, value) if k == old else (k, v) for k, v in m.items()]
    m.clear()
    m.update(items)


def _truthy(v: Any) -> bool:
    return v is not None and v is not False and v not in ("", [], {})


# Top-level keys axolotl renamed: old → (new, refuse when both are set).
RENAMED = {
    "noisy_embedding_alpha": ("neftune_noise_alpha", True),
    "dpo_beta": ("rl_beta", False),
    "evaluation_strategy": ("eval_strategy", False),
    "dataset_processes": ("dataset_num_proc", False),
    "pretrain_multipack_buffer_size": ("streaming_multipack_buffer_size", True),
    "sequence_parallel_degree": ("context_parallel_size", False),
    "eval_max_new_tokens": ("generation_max_new_tokens", False),
    "fsdp_final_state_dict_type": ("fsdp_config.final_state_dict_type", False),
}

# Legacy attention switches (axolotl's LEGACY_ATTN_FLAG_TO_IMPL, in its priority order).
ATTENTION_FLAGS = {
    "xformers_attention": "xformers",
    "sage_attention": "sage",
    "flex_attention": "flex_attention",
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "eager_attention": "eager",
}

# Keys axolotl 0.21 refuses when set, each with what to do instead.
REMOVED = {
    "max_packed_sequence_len": "no longer supported; use sample_packing: true with sequence_len",
    "dpo_use_logits_to_keep": "no longer supported (removed in TRL >= 0.29); remove it",
    "dpo_generate_during_eval": "no longer supported (removed in TRL >= 0.29); remove it",
    "dpo_norm_loss": "no longer supported (TRL >= 0.29 changed it); remove it",
    "rpo_alpha": "no longer supported (TRL >= 0.29 needs several DPO loss types for it); remove it",
    "s2_attention": "shifted-sparse attention is no longer supported; remove it",
    "flash_attn_rms_norm": "no longer supported; remove it",
    "unsloth_cross_entropy_loss": "removed; newtune's loss never builds full-vocabulary logits, remove it",
    "unsloth_rms_norm": "removed; remove it",
    "unsloth_rope": "removed; remove it",
    "gptq_groupsize": "removed from axolotl (a GPTQ checkpoint carries its own quantization_config); use gptq: true",
    "gptq_model_v1": "removed from axolotl (a GPTQ checkpoint carries its own quantization_config); use gptq: true",
}
UNSLOTH_LORA = {"unsloth_lora_mlp": "lora_mlp_kernel", "unsloth_lora_qkv": "lora_qkv_kernel",
                "unsloth_lora_o": "lora_o_kernel"}
UNUSED = ("ring_attn_func", "heads_k_stride")  # axolotl: deprecated and unused (ringmaster replaced them)


def _renames(m: MutableMapping) -> list[Change]:
    out = []
    for old, (new, refuse_both) in RENAMED.items():
        if old not in m:
            continue
        value = m[old]
        if "." in new:  # into a nested mapping, e.g. fsdp_config.final_state_dict_type
            parent, child = new.split(".")
            if value is None:
                del m[old]
                continue
            nested = m.get(parent) if isinstance(m.get(parent), MutableMapping) else {}
            nested[child] = value
            del m[old]
            m[parent] = nested
            out.append(Change(old, f"deprecated; use {new}"))
            continue
        if value is None:
            del m[old]
            out.append(Change(old, f"deprecated and empty; removed (its current name is {new})"))
        elif new in m and m[new] is not None:
            if refuse_both:
                out.append(Change(old, f"deprecated, and {new} is set too; remove {old}", refused=True, moved=False))
            else:
                del m[old]
                out.append(Change(old, f"deprecated; {new} is set too and wins, so {old} was removed"))
        else:
            _set(m, old, new, value)
            out.append(Change(old, f"deprecated; use {new}"))
    return out


def _attention(m: MutableMapping) -> list[Change]:
    present = [f for f in ATTENTION_FLAGS if f in m]
    if not present:
        return []
    chosen = [f for f in present if _truthy(m[f])]
    if chosen and _truthy(m.get("attn_implementation")):
        return [Change(f, f"cannot be combined with attn_implementation ({m['attn_implementation']}); the legacy "
                          "flag is deprecated, set only attn_implementation", refused=True, moved=False)
                for f in chosen]
    out = []
    first = chosen[0] if chosen else None
    for f in present:
        if f == first:
            _set(m, f, "attn_implementation", ATTENTION_FLAGS[f])
            out.append(Change(f, f"deprecated; use attn_implementation: {ATTENTION_FLAGS[f]}"))
        else:
            was = m.pop(f)
            why = "ignored next to " + first if _truthy(was) and first else "asks for nothing"
            out.append(Change(f, f"deprecated ({why}); removed, attn_implementation chooses the kernel"))
    return out


def _checkpointing(m: MutableMapping) -> list[Change]:
    gc = m.get("gradient_checkpointing")
    if gc not in ("offload", "offload_disk"):
        return []
    offload = "true" if gc == "offload" else "disk"
    m["gradient_checkpointing"] = True
    if m.get("activation_offloading") is None:
        m.pop("activation_offloading", None)
        if hasattr(m, "insert"):  # right after gradient_checkpointing in the file
            m.insert(list(m).index("gradient_checkpointing") + 1, "activation_offloading", gc == "offload" or "disk")
        else:
            m["activation_offloading"] = gc == "offload" or "disk"
    return [Change("gradient_checkpointing", f"'{gc}' is deprecated; use gradient_checkpointing: true with "
                   f"activation_offloading: {offload}")]


def _removed(m: MutableMapping) -> list[Change]:
    out = []
    for key, why in REMOVED.items():
        if key not in m:
            continue
        value = m[key]
        if _truthy(value) or (key.startswith(("dpo_", "rpo_")) and value is not None):
            out.append(Change(key, why, refused=True, moved=False))
        else:
            del m[key]
            out.append(Change(key, "removed in axolotl and empty here; dropped"))
    for old, new in UNSLOTH_LORA.items():
        if old not in m:
            continue
        if _truthy(m[old]):
            _set(m, old, new, m[old])
            out.append(Change(old, f"removed in axolotl; use {new}: true", refused=True))
        else:
            del m[old]
            out.append(Change(old, f"removed in axolotl and empty here; dropped (its current form is {new})"))
    if "rope_scaling" in m:
        value = m.pop("rope_scaling")
        if _truthy(value):
            mc = m.get("model_config") if isinstance(m.get("model_config"), MutableMapping) else {}
            mc["rope_scaling"] = value
            m["model_config"] = mc
            out.append(Change("rope_scaling", "no longer supported at the top level; it is a key under model_config "
                              "(model_config: {rope_scaling: ...})", refused=True))
    for key in UNUSED:
        if key in m:
            m.pop(key)
            out.append(Change(key, "deprecated and unused (ringmaster context parallelism replaced it); removed"))
    return out


def _samples(m: MutableMapping) -> list[Change]:
    out = []
    if "eval_table_size" in m:
        n = m.pop("eval_table_size")
        if n is not None:
            m.setdefault("generate_samples", True)
            m.setdefault("num_generation_samples", n)
            out.append(Change("eval_table_size", "deprecated; use generate_samples: true and num_generation_samples"))
    if "gc_steps" in m:
        n = m.pop("gc_steps")
        if n is not None:
            if n > 0:
                m.setdefault("torch_empty_cache_steps", n)
            m.setdefault("gc_collect_steps", n)
            out.append(Change("gc_steps", "deprecated; use torch_empty_cache_steps and gc_collect_steps"))
    if "flash_attn_d512" in m:
        value = m.pop("flash_attn_d512")
        if _truthy(value):
            m.setdefault("large_head_attention", "auto")
        out.append(Change("flash_attn_d512", "deprecated; use large_head_attention: auto" + ("" if _truthy(value) else "")))
    return out


def _dataset_fields(m: MutableMapping, where: str) -> list[Change]:
    """message_field_role / message_field_content → message_property_mappings (not for sharegpt, which reads them)."""
    t = m.get("type")
    if isinstance(t, str) and t.startswith("sharegpt"):
        return []
    out = []
    for prop in ("role", "content"):
        old = f"message_field_{prop}"
        if old not in m:
            continue
        value = m[old]
        if value is None:
            m.pop(old)
            continue
        mappings = m.get("message_property_mappings")
        if isinstance(mappings, MutableMapping):
            if prop in mappings and mappings[prop] != value:
                out.append(Change(f"{where}.{old}", f"deprecated, and message_property_mappings.{prop} says "
                                  f"'{mappings[prop]}'; remove {old}", refused=True, moved=False))
                continue
            mappings[prop] = value
            m.pop(old)
        else:
            _set(m, old, "message_property_mappings", {prop: value})
        out.append(Change(f"{where}.{old}", f"deprecated; use message_property_mappings: {{{prop}: {value}}}"))
    return out


def _fsdp1(m: MutableMapping) -> list[Change]:
    """FSDP1-style keys → FSDP2's fsdp_config (config/fsdp1.py names each translation)."""
    from newtune.config import fsdp1

    out, translated, problems = fsdp1.translate(dict(m))
    if not translated and not problems:
        return []
    for key in ("fsdp", "fsdp_final_state_dict_type"):
        if key in m and key not in out:
            del m[key]
    m["fsdp_config"] = out["fsdp_config"]
    if m.get("fsdp_version") is not None:
        m["fsdp_version"] = out["fsdp_version"]
    return ([Change("fsdp_config", f"FSDP1 key translated: {line}") for line in translated]
            + [Change("fsdp_config", problem, refused=True, moved=False) for problem in problems])


TOP_RULES: list[Callable[[MutableMapping], list[Change]]] = [_renames, _attention, _checkpointing, _removed, _samples,
                                                            _fsdp1]


def migrate(data: MutableMapping) -> list[Change]:
    """Move every old key of `data` (in place) to its current form; what changed, in file order."""
    changes = []
    for rule in TOP_RULES:
        changes += rule(data)
    for list_key in ("datasets", "test_datasets"):
        entries = data.get(list_key)
        if isinstance(entries, MutableMapping):
            entries = [entries]
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, MutableMapping):
                changes += _dataset_fields(entry, f"{list_key}[{i}]")
    return changes


def migrated(data: dict) -> tuple[dict, list[Change]]:
    """A migrated deep copy of `data` and its changes (load_config's entry point)."""
    out = copy.deepcopy(data)
    return out, migrate(out)


# ---- `newtune migrate CONFIG`: the same rules on the file's text, comments and order kept ----

def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    # axolotl configs indent lists under their key ("datasets:\n  - path: x"); keep what the file does
    if re.search(r"^[^\s#][^\n]*:[ \t]*\n(?:[ \t]*#[^\n]*\n)*  - ", text, re.M):
        y.indent(mapping=2, sequence=4, offset=2)
    return y


def migrate_text(text: str, source: str) -> tuple[str, list[Change]]:
    """The config text with old keys moved (comments and key order kept) and the changes."""
    from ruamel.yaml.error import YAMLError

    y = _yaml(text)
    try:
        data = y.load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}invalid YAML: {getattr(e, 'problem', e)}"]) from None
    if data is None:
        return text, []
    if not isinstance(data, MutableMapping):
        raise ConfigError(source, [f"the top level must be a mapping of keys, not {type(data).__name__}"])
    changes = migrate(data)
    if not any(c.moved for c in changes):
        return text, changes
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue(), changes


def diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=path, tofile=f"{path} (migrated)"))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` through a temp file in the same folder: never half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
