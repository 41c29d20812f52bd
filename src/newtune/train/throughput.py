"""The metrics line of a logging step, with axolotl's and the HF Trainer's token counters.

- `include_tkps` (axolotl's default: on): `tokens/trainable` and `tokens/total`, the trained tokens and all
  input tokens fed so far (padding included; newtune's unpadded batches feed none), and
  `tokens/train_per_sec_per_gpu`, trained tokens per second and process since the last log.
- `include_tokens_per_second` (the HF Trainer's `include_num_input_tokens_seen`, counting all input ids):
  `num_input_tokens_seen`, and `train_runtime` / `train_tokens_per_second` of this process's run so far.

Neither is logged in preference training: axolotl's DPO-family trainers count no tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from newtune.config.train import TrainConfig


@dataclass
class Throughput:
    """The counters at the last log, and at this process's start (a resumed run counts from there)."""

    started: float
    fed_at_start: int
    last_time: float
    last_trained: int

    @classmethod
    def start(cls, state: Any, started: float) -> Throughput:
        return cls(started, state.fed_tokens, started, state.tokens)

    def fields(self, t: TrainConfig, state: Any, now: float, world: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if t.include_tkps:
            out["tokens/train_per_sec_per_gpu"] = round((state.tokens - self.last_trained) / max(1, world)
                                                        / max(now - self.last_time, 1e-9), 2)
            out["tokens/trainable"], out["tokens/total"] = state.tokens, state.fed_tokens
        if t.include_tokens_per_second:
            runtime = max(now - self.started, 1e-9)
            out.update(num_input_tokens_seen=state.fed_tokens, train_runtime=round(runtime, 4),
                       train_tokens_per_second=round((state.fed_tokens - self.fed_at_start) / runtime, 3))
        self.last_time, self.last_trained = now, state.tokens
        return out


def log_record(run: Any, loss: Any, lr: float, grad_norm: Any, tokens_per_s: float) -> dict[str, Any]:
    """The metrics line of a logging step: `loss` is the mean of this rank's step losses since the last one."""
    acc, state = run.acc, run.state
    if acc.num_processes > 1:
        loss = acc.reduce(loss, "mean")
    record = {"step": state.step, "epoch": round(state.step / run.sched.steps_per_epoch, 4),
              "loss": loss.item(), "lr": lr, "grad_norm": float(grad_norm),  # sync point: logging steps only
              "tokens": state.real_tokens, "trained_tokens": state.tokens, "tokens_per_s": tokens_per_s}
    if not run.cfg.data.datasets:
        del record["epoch"]  # a pretraining stream has no epochs: its rows are read once, as they come
    if run.pref is not None:  # rewards/chosen, rewards/margins, ... over the pairs since the last log
        record.update(run.pref.take_metrics(acc))
    return record

