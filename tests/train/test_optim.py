"""Optimizer and scheduler names → objects; weight decay only on matrices."""

from __future__ import annotations

import pytest
import torch

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError
from newtune.train.optim import build_optimizer, build_scheduler, param_groups, warmup_steps


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.input_layernorm = torch.nn.LayerNorm(4)
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def ids(params):
    return sorted(id(p) for p in params)


def test_weight_decay_skips_biases_and_norms_and_frozen():
    m = Tiny()
    groups = param_groups(m, 0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert ids(groups[0]["params"]) == ids([m.proj.weight])
    assert ids(groups[1]["params"]) == ids([m.proj.bias, m.input_layernorm.weight, m.input_layernorm.bias])


def test_no_trainable_parameters_is_a_user_error():
    m = Tiny().requires_grad_(False)
    with pytest.raises(NewtuneError, match="no trainable parameters"):
        param_groups(m, 0.0)


@pytest.mark.parametrize(("name", "cls"), [
    ("adamw_torch", torch.optim.AdamW), ("adamw_hf", torch.optim.AdamW), ("adamw_torch_fused", torch.optim.AdamW),
    ("sgd", torch.optim.SGD),
])
def test_optimizer_names(name, cls):
    opt = build_optimizer(Tiny(), TrainConfig(optimizer=name, learning_rate=0.01, weight_decay=0.1), "cpu")
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1
    if name == "adamw_torch_fused":
        assert opt.defaults["fused"] is True


def test_adafactor_uses_the_given_lr():
    from transformers.optimization import Adafactor

    opt = build_optimizer(Tiny(), TrainConfig(optimizer="adafactor", learning_rate=0.01), "cpu")
    assert type(opt) is Adafactor and opt.defaults["relative_step"] is False and opt.defaults["lr"] == 0.01


@pytest.mark.parametrize("name", ["adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit",
                                  "adamw_torch_8bit", "adamw_torch_4bit"])
def test_8bit_optimizers_need_a_gpu(name):
    with pytest.raises(NewtuneError, match=f"{name} needs a CUDA GPU") as e:
        build_optimizer(Tiny(), TrainConfig(optimizer=name), "cpu")
    assert e.value.where == "optimizer"


def lrs(t: TrainConfig, total: int) -> list[float]:
    opt = build_optimizer(Tiny(), t, "cpu")
    sched = build_scheduler(opt, t, total)
    out = []
    for _ in range(total):
        out.append(round(sched.get_last_lr()[0], 6))
        opt.step()
        sched.step()
    return out


def test_warmup_default_is_axolotls_three_percent_capped():
    assert warmup_steps(TrainConfig(), 1000) == 30
    assert warmup_steps(TrainConfig(), 10000) == 100
    assert warmup_steps(TrainConfig(warmup_ratio=0.25), 10) == 3
    assert warmup_steps(TrainConfig(warmup_steps=2), 10) == 2


def test_schedules():
    base = {"learning_rate": 1.0, "warmup_steps": 2}
    assert lrs(TrainConfig(lr_scheduler="linear", **base), 6) == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25]
    assert lrs(TrainConfig(lr_scheduler="constant_with_warmup", **base), 4) == [0.0, 0.5, 1.0, 1.0]
    assert lrs(TrainConfig(lr_scheduler="constant", **base), 3) == [1.0, 1.0, 1.0]
    assert lrs(TrainConfig(lr_scheduler="cosine", **base), 6) == [0.0, 0.5, 1.0, 0.853553, 0.5, 0.146447]


def test_cosine_min_lr_ratio_sets_a_floor():
    t = TrainConfig(lr_scheduler="cosine", learning_rate=1.0, warmup_steps=0, cosine_min_lr_ratio=0.1)
    got = lrs(t, 5)  # 0.1 + 0.9 * (1 + cos(pi * s / 5)) / 2
    assert got == [1.0, 0.914058, 0.689058, 0.410942, 0.185942]
    named = TrainConfig(lr_scheduler="cosine_with_min_lr", learning_rate=1.0, warmup_steps=0, cosine_min_lr_ratio=0.1)
    assert lrs(named, 5) == got


def test_cosine_constant_lr_ratio_reaches_the_floor_early_and_stays():
    t = TrainConfig(lr_scheduler="cosine", learning_rate=1.0, warmup_steps=0, cosine_min_lr_ratio=0.1,
                    cosine_constant_lr_ratio=0.5)
    assert lrs(t, 10) == [1.0, 0.914058, 0.689058, 0.410942, 0.185942, 0.1, 0.1, 0.1, 0.1, 0.1]


def test_lr_quadratic_warmup_warms_up_quadratically_then_cosine():
    t = TrainConfig(lr_scheduler="cosine", learning_rate=1.0, warmup_steps=4, lr_quadratic_warmup=True)
    assert lrs(t, 8) == [0.0, 0.0625, 0.25, 0.5625, 1.0, 0.853553, 0.5, 0.146447]
    linear = TrainConfig(lr_scheduler="cosine", learning_rate=1.0, warmup_steps=4)
    assert lrs(linear, 8)[:4] == [0.0, 0.25, 0.5, 0.75]
