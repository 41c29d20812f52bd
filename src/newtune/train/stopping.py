"""Stopping early, as axolotl's callbacks do: the loss watchdog and early stopping on the eval loss.

`loss_watchdog_threshold` (axolotl's LossWatchDogCallback): a logged training loss above the threshold
`loss_watchdog_patience` times in a row (default 3) stops the run; a checkpoint is saved so nothing is lost.
`early_stopping_patience` (transformers' EarlyStoppingCallback on eval_loss): an evaluation that does not
improve on the best eval loss so far, that many times in a row, ends training normally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
