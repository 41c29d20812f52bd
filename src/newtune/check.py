"""What `newtune check` prints: the resolved config with the values newtune will use where a key is left
unset (marked `# derived: ...`), and the dataset files that do not exist yet. Torch-free, like check itself.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from newtune import embedded, env
from newtune.config.run import RunConfig

if TYPE_CHECKING:
    from newtune.config.data import DatasetConfig

# Linear layers lora_target_linear adapts, by the base model's config.json model_type, for the models whose
# layer names are known here (the decoder projections; the LM head is never adapted). Other models: the
# names are found when the model loads, and check says so.
LLAMA_LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
LINEAR_BY_MODEL_TYPE: dict[str, list[str]] = {
    t: LLAMA_LINEAR for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo2", "granite")
}


def effective_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML, each derived value followed by a comment saying where it comes from."""
    flat = cfg.flat()
    derived: dict[str, str] = {}
    if cfg.model.base_model is None:
        flat["base_model"] = embedded.EMBEDDED_NAME
        derived["base_model"] = "no base_model given: the embedded SmolLM2-135M-Instruct"
    if cfg.train.bf16 == "auto":
        resolved = resolve_bf16_auto()
        if resolved is not None:
            flat["bf16"], derived["bf16"] = resolved
        else:
            derived["bf16"] = "decided at train start (GPU support, or a measured bf16 step on this CPU)"
    if cfg.adapter.adapter in ("lora", "qlora") and cfg.adapter.lora_target_linear:
        found = linear_layers(cfg)
        if found is not None:
            flat["lora_target_modules"] = sorted(set(cfg.adapter.lora_target_modules or []) | set(found[0]))
            derived["lora_target_modules"] = f"lora_target_linear: every linear layer but the LM head ({found[1]})"
        else:
            derived["lora_target_modules"] = "lora_target_linear: every linear layer but the LM head, found when the model loads"
    lines: list[str] = []
    for key, value in flat.items():
        if key in ("datasets", "test_datasets") and value:
            lines.append(f"{key}:")
            for ds, entry in zip(getattr(cfg.data, key), value, strict=True):
                lines += dataset_lines(ds, entry)
            continue
        lines += commented({key: value}, derived.get(key), indent="")
    return "\n".join(lines) + "\n"


def commented(item: dict, note: str | None, indent: str) -> list[str]:
    text = yaml.safe_dump(item, sort_keys=False, allow_unicode=True, width=10_000).rstrip("\n").splitlines()
    text = [indent + line for line in text]
    if note:
        text[0] += f"  # derived: {note}"
    return text


def dataset_lines(ds: DatasetConfig, entry: dict) -> list[str]:
    """One `datasets:` entry, with the training rules a conversation type applies when its keys are unset."""
    from newtune.data.formats.chat_template import ChatOptions
    from newtune.data.options import options_of

    notes: dict[str, str] = {}
    try:
        opts = options_of(ds)
    except Exception:  # noqa: BLE001 - check already validated the entry; show it as given
        opts = None
    if isinstance(opts, ChatOptions):
        if opts.roles_to_train is None:
            entry["roles_to_train"] = ["assistant", *opts.extra_trained_roles()]
            notes["roles_to_train"] = "axolotl's default"
        eos = opts.train_on_eos or "turn"
        if opts.train_on_eos is None:
            entry["train_on_eos"], notes["train_on_eos"] = eos, "axolotl's default"
        if opts.train_on_eot is None:
            entry["train_on_eot"], notes["train_on_eot"] = opts.train_on_eos or eos, "follows train_on_eos"
    lines: list[str] = []
    for i, (key, value) in enumerate(entry.items()):
        part = commented({key: value}, notes.get(key), indent="  ")
        if i == 0:
            part[0] = "- " + part[0][2:]
        lines += part
    return lines


def resolve_bf16_auto() -> tuple[bool, str] | None:
    """bf16: auto where it is known without torch: forced by NEWTUNE_CPU_BF16, a CPU-only machine whose CPU has
    no bf16 instructions, or this CPU's verdict measured earlier (the newtune cache). None: decided at train."""
    from newtune.train.precision import cpu_bf16_verdict_cached, cpu_has_bf16

    if Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir()):
        return None
    forced = env.value("NEWTUNE_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1", f"auto, NEWTUNE_CPU_BF16={forced} in the environment"
    if not cpu_has_bf16():
        return False, "auto: no GPU, and this CPU has no bf16 instructions"
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    verdict = cpu_bf16_verdict_cached(torch_version)
    if verdict is None:
        return None
    return verdict[0], f"auto: {verdict[1]} (measured earlier)"


def linear_layers(cfg: RunConfig) -> tuple[list[str], str] | None:
    """(linear layer names, the model_type they come from) read from the base model's config.json, if known."""
    base = cfg.model.base_model
    if embedded.is_embedded(base):
        return LINEAR_BY_MODEL_TYPE["llama"], "llama, the embedded model"
    path = Path(str(base)).expanduser()
    conf = path / "config.json" if path.is_dir() else None
    if conf is None or not conf.is_file():
        return None
    model_type = json.loads(conf.read_text()).get("model_type")
    names = LINEAR_BY_MODEL_TYPE.get(model_type)
    return (names, model_type) if names else None


def missing_model_paths(cfg: RunConfig) -> list[tuple[str, str]]:
    """(key, path) of base_model, base_model_config and tokenizer_config where they name a local path that
    does not exist (a hub id never does)."""
    from newtune.paths import model_path_missing

    keys = {"base_model": cfg.model.base_model, "base_model_config": cfg.model.base_model_config,
            "tokenizer_config": cfg.model.tokenizer_config}
    return [(key, value) for key, value in keys.items() if value and model_path_missing(value)]


def missing_dataset_files(cfg: RunConfig) -> list[tuple[str, str]]:
    """(key, path) of each dataset entry that names a local file or directory that does not exist."""
    from newtune.data.sources import looks_local

    out = []
    for part in ("datasets", "test_datasets"):
        for i, ds in enumerate(getattr(cfg.data, part) or []):
            if looks_local(ds.path) and not Path(ds.path).expanduser().exists():
                out.append((f"{part}[{i}].path", ds.path))
    return out
