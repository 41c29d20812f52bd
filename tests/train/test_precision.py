"""Precision choice: bf16 auto only where the hardware does it natively and fast; fp16 needs a GPU."""

from __future__ import annotations

import pytest

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError
from newtune.train import precision
from newtune.train.precision import Precision, cpu_has_bf16, describe, resolve_precision

SPR = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"


def test_cpu_bf16_flags_are_read_from_cpuinfo():
    assert cpu_has_bf16(SPR) is True
    assert cpu_has_bf16(SKYLAKE) is False
    assert cpu_has_bf16("") is False


def test_auto_on_cpu_follows_flags_and_measured_speed(monkeypatch, tmp_path):
    monkeypatch.delenv("NEWTUNE_CPU_BF16", raising=False)
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    flags = {"value": SPR}
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda cpuinfo=None: cpu_has_bf16(flags["value"]))
    for has, ratio, expected in ((SPR, 0.5, "bfloat16"), (SPR, 1.7, "float32"), (SKYLAKE, 0.5, "float32")):
        flags["value"] = has
        (tmp_path / "cpu_bf16.json").unlink(missing_ok=True)  # a new machine: measure again
        monkeypatch.setattr(precision, "cpu_bf16_step_ratio", lambda r=ratio: r)
        p = resolve_precision(TrainConfig(bf16="auto"), adapter="lora", device_type="cpu")
        assert p.dtype == expected, (has, ratio)
        assert p.mixed_precision == ("bf16" if expected == "bfloat16" else "no")


def test_cpu_bf16_step_ratio_is_measured():
    precision.cpu_bf16_step_ratio.cache_clear()
    ratio = precision.cpu_bf16_step_ratio()
    assert ratio > 0 and ratio == precision.cpu_bf16_step_ratio()  # measured once per process


def test_auto_on_gpu_with_bf16_is_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cuda_bf16", lambda: True)
    p = resolve_precision(TrainConfig(), adapter="lora", device_type="cuda")
    assert p == Precision("bfloat16", "bf16", "auto: this GPU supports bf16; set bf16: false for fp32")
    assert describe(p) == "precision: bf16 (auto: this GPU supports bf16; set bf16: false for fp32)"


def test_auto_on_gpu_without_bf16_is_fp32(monkeypatch):
    monkeypatch.setattr(precision, "cuda_bf16", lambda: False)
    p = resolve_precision(TrainConfig(), adapter=None, device_type="cuda")
    assert (p.dtype, p.mixed_precision) == ("float32", "no")


def test_explicit_bf16_and_false():
    p = resolve_precision(TrainConfig(bf16=True), adapter=None, device_type="cpu")
    assert (p.dtype, p.mixed_precision) == ("bfloat16", "bf16")
    p = resolve_precision(TrainConfig(bf16=False), adapter=None, device_type="cpu")
    assert (p.dtype, p.mixed_precision) == ("float32", "no")


def test_bf16_true_on_gpu_without_bf16_is_an_error(monkeypatch):
    monkeypatch.setattr(precision, "cuda_bf16", lambda: False)
    with pytest.raises(NewtuneError, match="does not support bf16"):
        resolve_precision(TrainConfig(bf16=True), adapter=None, device_type="cuda")


def test_fp16_needs_a_gpu():
    with pytest.raises(NewtuneError, match="fp16 training needs a CUDA GPU") as e:
        resolve_precision(TrainConfig(fp16=True, bf16=False), adapter="lora", device_type="cpu")
    assert e.value.where == "fp16"


def test_fp16_keeps_fp32_weights_for_full_finetunes():
    assert resolve_precision(TrainConfig(fp16=True, bf16=False), adapter=None, device_type="cuda").dtype == "float32"
    assert resolve_precision(TrainConfig(fp16=True, bf16=False), adapter="lora", device_type="cuda").dtype == "float16"


def test_cpu_verdict_is_measured_once_per_machine_and_can_be_forced(monkeypatch, tmp_path):
    monkeypatch.delenv("NEWTUNE_CPU_BF16", raising=False)
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda cpuinfo=None: True)
    ratios = iter([0.5, 2.0])
    monkeypatch.setattr(precision, "cpu_bf16_step_ratio", lambda: next(ratios))
    assert precision.cpu_bf16_is_fast() is True
    assert precision.cpu_bf16_is_fast() is True  # the stored verdict, not a second (different) measurement
    assert (tmp_path / "cpu_bf16.json").exists()
    monkeypatch.setenv("NEWTUNE_CPU_BF16", "0")
    assert precision.cpu_bf16_is_fast() is False


@pytest.mark.parametrize(("flags", "ratio", "line"), [
    (SPR, 0.7, "precision: bf16 (auto: measured 1.4× faster than fp32 on this CPU; set bf16: false for fp32)"),
    (SPR, 3.0, "precision: fp32 (auto: bf16 measured 3.0× slower than fp32 on this CPU; set bf16: true to use it anyway)"),
    (SPR, 0.9, "precision: fp32 (auto: bf16 measured only 1.11× faster than fp32 on this CPU (needs 1.25×); "
               "set bf16: true to use it anyway)"),
    (SKYLAKE, 0.5, "precision: fp32 (auto: this CPU has no bf16 instructions; set bf16: true to use it anyway)"),
])
def test_the_precision_line_says_what_and_why(monkeypatch, tmp_path, flags, ratio, line):
    monkeypatch.delenv("NEWTUNE_CPU_BF16", raising=False)
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda cpuinfo=None: cpu_has_bf16(flags))
    monkeypatch.setattr(precision, "cpu_bf16_step_ratio", lambda: ratio)
    assert describe(resolve_precision(TrainConfig(bf16="auto"), adapter="lora", device_type="cpu")) == line


def test_full_finetune_bf16_master_weights(monkeypatch):
    pure = resolve_precision(TrainConfig(bf16=True), adapter=None, device_type="cpu")
    assert (pure.dtype, pure.mixed_precision) == ("bfloat16", "bf16") and "fp32_master_weights: true" in pure.reason
    master = resolve_precision(TrainConfig(bf16=True, fp32_master_weights=True), adapter=None, device_type="cpu")
    assert (master.dtype, master.mixed_precision) == ("float32", "bf16")
    lora = resolve_precision(TrainConfig(bf16=True, fp32_master_weights=True), adapter="lora", device_type="cpu")
    assert lora.dtype == "bfloat16"  # the frozen base; the adapter is fp32 either way
