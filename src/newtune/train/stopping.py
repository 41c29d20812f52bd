"""Stopping early, as axolotl's callbacks do: the loss watchdog and early stopping on the eval loss.

`loss_watchdog_threshold` (axolotl's LossWatchDogCallback): a logged training loss above the threshold
`loss_watchdog_patience` times in a row (default 3) stops the run; a checkpoint is saved so nothing is lost.
`early_stopping_patience` (transformers' EarlyStoppingCallback on eval_loss): an evaluation that does not
improve on the best eval loss so far, that many times in a row, ends training normally.
Ctrl-C (StopFlag): save a checkpoint and stop after the current step.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from typing import Any

from newtune.errors import NewtuneError

LOSS_BLOWUP = "loss_watchdog"
NO_EVAL_GAIN = "early_stopping"


@dataclass
class Stopper:
    threshold: float | None = None
    patience: int = 3
    eval_patience: int | None = None
    violations: int = 0
    best_eval: float | None = None
    stale_evals: int = 0
    why: str = field(default="")

    @classmethod
    def of(cls, t: Any) -> Stopper:
        return cls(threshold=t.loss_watchdog_threshold, patience=t.loss_watchdog_patience or 3,
                   eval_patience=t.early_stopping_patience)

    def check(self, record: dict) -> str | None:
        """After each logged record: LOSS_BLOWUP, NO_EVAL_GAIN or None; `why` says it in words."""
        if self.threshold is not None and "loss" in record:
            self.violations = self.violations + 1 if record["loss"] > self.threshold else 0
            if self.violations >= self.patience:
                self.why = (f"loss {record['loss']:.4g} above loss_watchdog_threshold {self.threshold:g} for "
                            f"{self.violations} logged steps in a row: stopping (a checkpoint is saved)")
                return LOSS_BLOWUP
        if self.eval_patience is not None and "eval_loss" in record:
            loss = record["eval_loss"]
            if self.best_eval is None or loss < self.best_eval:
                self.best_eval, self.stale_evals = loss, 0
            else:
                self.stale_evals += 1
                if self.stale_evals >= self.eval_patience:
                    self.why = (f"eval_loss has not improved on {self.best_eval:.4g} for {self.stale_evals} "
                                "evaluations (early_stopping_patience): training ends here")
                    return NO_EVAL_GAIN
        return None


class StopFlag:
    """Ctrl-C asks the loop to save a checkpoint and stop after the current step; a second one aborts.

    Under torchrun (and `accelerate launch`) a worker gets Ctrl-C twice: from the terminal, which signals
    the whole process group, and from the launcher, which forwards it to its workers at once. So a
    second SIGINT aborts only when it comes more than REPEAT_S after the first. The launcher kills its
    workers 30 s after forwarding: the step and the checkpoint must finish within that.
    """

    REPEAT_S = 1.0

    def __init__(self) -> None:
        import threading

        self.hit = False
        self.first = 0.0
        self.previous = None  # signal handlers can only be set from the main thread
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)

    def handle(self, *_: Any) -> None:
        if not self.hit:
            self.hit, self.first = True, time.monotonic()
        elif time.monotonic() - self.first > self.REPEAT_S:
            raise KeyboardInterrupt

    def requested(self, acc: Any) -> bool:
        if acc.num_processes == 1:
            return self.hit
        import torch

        flag = torch.tensor(float(self.hit), device=acc.device)  # sync point: every rank must stop together
        return bool(acc.reduce(flag, "sum").item())

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def out_of_memory(cfg: Any, step: int) -> NewtuneError:
    """The message of a run that ran out of memory: what to change (`cfg`: the RunConfig)."""
    t = cfg.train
    return NewtuneError(
        "micro_batch_size", f"out of memory at step {step + 1} (micro_batch_size {t.micro_batch_size}, "
        f"sequence_len {cfg.data.sequence_len})",
        "lower micro_batch_size (raise gradient_accumulation_steps to keep the batch), lower sequence_len, "
        "set gradient_checkpointing: true, or use adapter: lora")
