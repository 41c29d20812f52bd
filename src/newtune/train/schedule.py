"""Step counts of a run: optimizer steps per epoch and in all, when to evaluate and to save."""

from __future__ import annotations

import math
from dataclasses import dataclass

from newtune.config.run import RunConfig
from newtune.errors import NewtuneError
from newtune.train import batches as B


@dataclass
class Schedule:
    """Step counts derived from the data and the config."""

    micro_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int | None
    save_every: int | None
    save_each_epoch: bool
    evaluates: bool = True  # False: evals_per_epoch: 0 or eval_strategy: no (not even at the end)


def make_schedule(cfg: RunConfig, n_micro: int, world: int, has_eval: bool) -> Schedule:
    t = cfg.train
    per_epoch = B.steps_in_epoch(n_micro, t.gradient_accumulation_steps, world)
    if per_epoch == 0:
        raise NewtuneError("micro_batch_size", f"{n_micro} micro-batches cannot fill one optimizer step of "
                           f"{t.gradient_accumulation_steps} × {world} processes",
                           "add data or lower gradient_accumulation_steps / micro_batch_size")
    total = t.max_steps or math.ceil(t.num_epochs * per_epoch)
    eval_every = t.eval_steps or (max(1, per_epoch // t.evals_per_epoch) if t.evals_per_epoch else None)
    if t.eval_strategy == "epoch":
        eval_every = per_epoch
    evaluates = has_eval and t.evals_per_epoch != 0 and t.eval_strategy != "no"
    save_every = t.save_steps or (max(1, per_epoch // t.saves_per_epoch) if t.saves_per_epoch else None)
    each_epoch = t.save_strategy == "epoch" or (t.save_strategy is None and save_every is None)
    if t.save_strategy == "no":
        save_every, each_epoch = None, False
    return Schedule(n_micro, per_epoch, total, eval_every if evaluates else None, save_every, each_epoch, evaluates)
