"""Reference-free preference losses (`rl: orpo | simpo`): TRL 1.14's ORPOTrainer and CPOTrainer(loss_type="simpo").

Both score a completion by its length-averaged log-probability (TRL's average_log_prob): the sum over its
tokens divided by their number. No reference model is kept or run.

- ORPO: loss = NLL − λ·mean over pairs of log σ(log odds), log odds = (a_c − a_r) − (log(1 − e^a_c) −
  log(1 − e^a_r)). The NLL is TRL's: the token mean of −log p over the chosen rows' prompt and completion
  tokens (all but each row's first), within one micro-batch.
- SimPO: loss = mean over pairs of −log σ(β·(a_c − a_r) − γ) + cpo_alpha·NLL, the NLL the token mean over the
  chosen completions' tokens of the micro-batch (as TRL's CPOTrainer computes it; 0 when cpo_alpha is 0).

The pair terms are a mean over the step's pairs, exact under accumulation like DPO's. The NLL is TRL's token
mean within each micro-batch, which the step weighs by the micro-batch's pairs: with equal micro-batches that
is what TRL's accumulation (the mean of its micro-batch losses) computes, not the token mean of one big batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from newtune.train.preference import PairBatch, PreferenceObjective, completion_logps, token_logps

ORPO_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen")
SIMPO_METRICS = ORPO_METRICS[:7]


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − e^x) for x < 0, without cancellation (TRL's branch at −log 2)."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_terms(avg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log σ(log odds), log odds) per pair, from the (2B,) length-averaged log-probs [chosen; rejected]."""
    chosen, rejected = avg.chunk(2)
    log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
    return F.logsigmoid(log_odds), log_odds


def simpo_losses(avg: torch.Tensor, beta: float, gamma: float, smoothing: float = 0.0) -> torch.Tensor:
    """(B,) TRL's CPO loss_type simpo: −log σ(β·(a_c − a_r) − γ), label-smoothed as TRL does."""
    chosen, rejected = avg.chunk(2)
    z = beta * ((chosen - rejected) - gamma / beta)
    return -F.logsigmoid(z) * (1 - smoothing) - F.logsigmoid(-z) * smoothing


class ReferenceFreeObjective(PreferenceObjective):
    """ORPO or SimPO over the same pair batches as DPO; metrics with TRL's names for these trainers."""

    def __init__(self, rl: str, pref: Any, *, pad_id: int, max_length: int) -> None:
        self.rl, self.pad_id, self.max_length, self.ref_model = rl, pad_id, max_length, None
        self.beta = pref.orpo_weight if rl == "orpo" else pref.beta  # TRL's beta: it also scales the rewards/*
        self.weight = 1.0 if rl == "orpo" else pref.nll_weight  # the NLL's weight: cpo_alpha for SimPO
        self.gamma = pref.simpo_gamma if rl == "simpo" else None
        self.smoothing = 0.0  # axolotl 0.21.0 passes no label smoothing to CPO
        self.names = ORPO_METRICS if rl == "orpo" else SIMPO_METRICS
        self.sums: torch.Tensor | None = None

    def logps(self, model: Any, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """((2B,) length-averaged completion log-probs, TRL's NLL of the micro-batch)."""
        n_rows, counts = batch.input_ids.shape[0], batch.completion_mask.sum(1)
        if self.rl == "orpo":  # NLL over the chosen rows' prompt and completion: one forward for both
            mask = batch.completion_mask.clone()
            mask[: n_rows // 2] = batch.attention_mask[: n_rows // 2]
            where, token = token_logps(model, batch, mask)
            in_completion = batch.completion_mask.reshape(-1)[where + 1].to(token.dtype)
            sums = token.new_zeros(n_rows).index_add(0, where // batch.width, token * in_completion)
            chosen = where // batch.width < n_rows // 2
            nll = -(token * chosen).sum() / chosen.sum().clamp(min=1)
        else:
            sums = completion_logps(model, batch)
            n_chosen = counts[: n_rows // 2].sum().clamp(min=1)
            nll = -sums[: n_rows // 2].sum() / n_chosen if self.weight else sums.new_zeros(())
        return sums / counts.clamp(min=1).to(sums.dtype), nll

    def loss_sum(self, model: Any, batch: PairBatch) -> tuple[torch.Tensor, int]:
        """(B × this micro-batch's TRL loss, B): summed over micro-batches and divided by the step's pairs."""
        avg, nll = self.logps(model, batch)
        if self.rl == "orpo":
            ratio, log_odds = orpo_terms(avg)
            losses = nll - self.beta * ratio
            extra = [ratio.detach(), log_odds.detach()]
        else:
            losses = simpo_losses(avg, self.beta, self.gamma, self.smoothing) + self.weight * nll
            extra = []
        self.accumulate_free(avg.detach(), nll.detach(), extra)
        return losses.sum(), batch.n_trained

    def accumulate_free(self, avg: torch.Tensor, nll: torch.Tensor, extra: list[torch.Tensor]) -> None:
        chosen_r, rejected_r = (self.beta * avg).chunk(2)  # TRL's rewards: β × the averaged log-probs
        pc, pr = avg.chunk(2)
        n = len(pc)
        row = [chosen_r.sum(), rejected_r.sum(), (chosen_r > rejected_r).to(avg.dtype).sum(),
               (chosen_r - rejected_r).sum(), pc.sum(), pr.sum(), nll * n, *(e.sum() for e in extra)]
        row = torch.stack([v.to(torch.float64) for v in row] + [torch.tensor(float(n), dtype=torch.float64,
                                                                             device=avg.device)])
        self.sums = row if self.sums is None else self.sums + row

    def metric_names(self) -> tuple[str, ...]:
        return self.names
