"""DeepSpeed configs: a JSON path, a mapping, or one of the names axolotl configs use (shipped with newtune).

`deepspeed: deepspeed_configs/zero3.json` works without the file in the working directory: a path
that does not exist but names a shipped config reads newtune's copy (zero1, zero2, zero3,
zero3_bf16_cpuoffload_all). "auto" values are filled from the config, as the HF Trainer does.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from newtune.errors import NewtuneError

SHIPPED = ("zero1", "zero2", "zero3", "zero3_bf16_cpuoffload_all")


def shipped_path(name: str) -> Path | None:
    """newtune's copy of `deepspeed_configs/<name>.json`, if it ships one."""
    stem = Path(name).name.removesuffix(".json")
    if stem not in SHIPPED:
        return None
    return Path(str(resources.files("newtune") / "deepspeed_configs" / f"{stem}.json"))


def load_deepspeed_config(spec: str | dict, *, micro_batch_size: int, accumulation: int, world: int,
                          max_grad_norm: float | None, bf16: bool, fp16: bool) -> dict:
    """The DeepSpeed config as a mapping, with "auto" batch, clipping and precision values resolved."""
    if isinstance(spec, dict):
        cfg = json.loads(json.dumps(spec))
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            path = shipped_path(spec) or path
        if not path.is_file():
            raise NewtuneError("deepspeed", f"{spec}: no such file, and not a config newtune ships",
                               f"give a path, or one of: {', '.join(f'deepspeed_configs/{n}.json' for n in SHIPPED)}")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise NewtuneError(f"deepspeed: {path}, line {e.lineno}", f"invalid JSON: {e.msg}") from None
    auto = {"train_micro_batch_size_per_gpu": micro_batch_size, "gradient_accumulation_steps": accumulation,
            "train_batch_size": micro_batch_size * accumulation * world, "gradient_clipping": max_grad_norm or 0.0}
    for key, value in auto.items():
        if cfg.get(key, "auto") == "auto":
            cfg[key] = value
    for key, on in (("bf16", bf16), ("fp16", fp16)):
        if isinstance(cfg.get(key), dict) and cfg[key].get("enabled") == "auto":
            cfg[key]["enabled"] = on
    return cfg


def zero_stage(cfg: dict) -> int:
    return int(cfg.get("zero_optimization", {}).get("stage", 0))


def resolved(spec: Any, t: Any, world: int, mixed_precision: str) -> dict:
    """load_deepspeed_config from the train section's batch keys."""
    return load_deepspeed_config(spec, micro_batch_size=t.micro_batch_size, accumulation=t.gradient_accumulation_steps,
                                 world=world, max_grad_norm=t.max_grad_norm, bf16=mixed_precision == "bf16",
                                 fp16=mixed_precision == "fp16")
