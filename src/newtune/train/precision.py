"""bf16 / fp16 / tf32: what the config asks for, checked against what the hardware does natively.

`bf16: auto` picks bf16 on a CUDA GPU that supports it. On a CPU it detects, never assumes: only a CPU
with bf16 instructions (AVX512_BF16/AMX) is considered, and then a short linear-layer forward+backward
is timed in both dtypes; bf16 is picked only when it is clearly faster. CPU flags alone mislead: on
one Sapphire Rapids VM (2 cores, torch 2.13) a 576-wide Llama step took 0.8 s in fp32 and 2.4 s under
bf16 autocast, while a Zen 4 box runs bf16 matmuls twice as fast as fp32. `bf16: true` still trains in
bf16 on CPU when asked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from newtune import env
from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Precision:
    """The dtype the model is loaded in and accelerate's mixed_precision mode."""

    dtype: str  # "float32" | "bfloat16" | "float16"
    mixed_precision: str  # "no" | "bf16" | "fp16"
    reason: str

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where there is no such file)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bf16 instructions (AVX512_BF16 or AMX-BF16)."""
    return any(flag in cpu_flags(cpuinfo) for flag in CPU_BF16_FLAGS)


def cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


BF16_MARGIN = 0.8  # bf16 must take at most 80% of fp32's time to be worth its lower precision


@functools.cache
def cpu_bf16_step_ratio() -> float:
    """Time of a bf16 training step over the fp32 one, on this CPU, for a one-layer Llama (about 1 s).

    A whole decoder layer, not one matmul: a lone bf16 linear layer can be 3x faster than fp32 on a CPU
    whose full bf16 training step is 5x slower (norms, softmax, casts and the backward pass).
    """
    import time

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def timed(dtype) -> float:
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=576, intermediate_size=1536,
                                             num_hidden_layers=1, num_attention_heads=9, num_key_value_heads=3))
        model.to(dtype)
        ids = torch.randint(0, 1024, (2, 128))
        best = float("inf")
        for _ in range(3):  # the first round warms up kernels; keep the best of the rest
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                model(ids, labels=ids).loss.backward()
            best = min(best, time.perf_counter() - start)
        return best

    return timed(torch.bfloat16) / timed(torch.float32)


def cpu_bf16_is_fast(cpuinfo: str | None = None) -> bool:
    """bf16 instructions present and a measured bf16 step clearly faster than fp32 (see cpu_bf16_verdict)."""
    return cpu_bf16_verdict(cpuinfo)[0]


def cpu_bf16_verdict(cpuinfo: str | None = None) -> tuple[bool, str]:
    """(bf16 is worth it on this CPU, why in words).

    The verdict is measured once per machine (CPU model, torch version) and kept in the newtune cache, so
    every process of a run, and a resumed run, decide the same. NEWTUNE_CPU_BF16=0/1 overrides it.
    """
    forced = env.value("NEWTUNE_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1", f"NEWTUNE_CPU_BF16={forced} in the environment"
    if not cpu_has_bf16(cpuinfo):
        return False, "this CPU has no bf16 instructions"
    import json

    import torch
    from filelock import FileLock

    from newtune.embedded import cache_root

    key = f"{cpu_model_name()}|torch {torch.__version__}"
    path = cache_root() / "cpu_bf16.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # one process measures; the others (ranks) read its verdict
        known = json.loads(path.read_text()) if path.exists() else {}
        if key not in known:
            known[key] = cpu_bf16_step_ratio()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(known, indent=1))
            tmp.replace(path)
    return verdict_of(known[key])


def cpu_bf16_verdict_cached(torch_version: str) -> tuple[bool, str] | None:
    """The verdict measured earlier on this CPU with this torch, from the newtune cache (torch-free); None if unknown."""
    import json

    from newtune.embedded import cache_root

    path = cache_root() / "cpu_bf16.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ratio = known.get(f"{cpu_model_name()}|torch {torch_version}")
    return verdict_of(ratio) if isinstance(ratio, int | float) else None


def verdict_of(ratio: float) -> tuple[bool, str]:
    """bf16 step time / fp32 step time → (bf16 is worth it, why)."""
    if ratio <= BF16_MARGIN:
        return True, f"measured {1 / ratio:.1f}× faster than fp32 on this CPU"
    if ratio > 1:
        return False, f"bf16 measured {ratio:.1f}× slower than fp32 on this CPU"
    return False, f"bf16 measured only {1 / ratio:.2f}× faster than fp32 on this CPU (needs {1 / BF16_MARGIN:.2f}×)"


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo (or what the platform says). Torch-free; benches use it too."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def resolve_precision(t: TrainConfig, *, adapter: str | None, device_type: str) -> Precision:
    """Decide bf16 / fp16 / fp32 for this run on `device_type` ("cuda", "cpu", ...); `reason` says why."""
    cuda = device_type == "cuda"
    if t.fp16:
        if not cuda:
            raise NewtuneError("fp16", "fp16 training needs a CUDA GPU (loss scaling), and none is used",
                               "remove fp16 (bf16: auto picks the best precision this machine has)")
        # GradScaler unscales fp32 gradients only, so full fine-tunes keep fp32 weights under fp16 autocast.
        return Precision("float16" if adapter else "float32", "fp16", "fp16: true")
    if t.bf16 is True:
        if cuda and not cuda_bf16():
            raise NewtuneError("bf16", "this GPU does not support bf16", "set fp16: true, or bf16: false")
        return bf16(t, adapter, "bf16: true")
    if t.bf16 == "auto" and cuda:
        if cuda_bf16():
            return bf16(t, adapter, "auto: this GPU supports bf16; set bf16: false for fp32")
        return Precision("float32", "no", "auto: this GPU lacks bf16; fp16: true for mixed precision")
    if t.bf16 == "auto" and device_type == "cpu":
        fast, why = cpu_bf16_verdict()
        if fast:
            return bf16(t, adapter, f"auto: {why}; set bf16: false for fp32")
        return Precision("float32", "no", f"auto: {why}; set bf16: true to use it anyway")
    if t.bf16 == "auto":
        return Precision("float32", "no", f"auto: no bf16 on {device_type}")
    return Precision("float32", "no", "bf16: false")


def bf16(t: TrainConfig, adapter: str | None, why: str) -> Precision:
    """bf16 compute. A full fine-tune holds its weights and optimizer state in bf16 (as axolotl loads the
    model in bf16), or in fp32 under bf16 autocast with fp32_master_weights (as the HF Trainer does)."""
    if adapter is not None:
        return Precision("bfloat16", "bf16", why)  # the frozen base in bf16; peft keeps the adapter in fp32
    if t.fp32_master_weights:
        return Precision("float32", "bf16", f"{why}; master weights and optimizer state fp32 (fp32_master_weights)")
    return Precision("bfloat16", "bf16", f"{why}; weights and optimizer state bf16 too "
                     "(fp32_master_weights: true keeps them in fp32)")


def describe(prec: Precision) -> str:
    """The line `train` prints: `precision: bf16 (auto: measured 1.4× faster than fp32 on this CPU; ...)`."""
    name = {"bf16": "bf16", "fp16": "fp16"}.get(prec.mixed_precision, "fp32")
    return f"precision: {name} ({prec.reason})"


def apply_tf32(t: TrainConfig) -> None:
    """tf32: true allows TF32 matmuls and convolutions on CUDA; false forbids them; None leaves torch's default."""
    import torch

    if t.tf32 is None or not torch.cuda.is_available():
        return
    torch.backends.cuda.matmul.allow_tf32 = bool(t.tf32)
    torch.backends.cudnn.allow_tf32 = bool(t.tf32)
