"""Keys of preference training (`rl:`): the loss and its hyperparameters, with axolotl 0.21.0's names.

`rl` itself lives in config/data.py: it decides how the dataset types read rows. These keys only
change the loss, so they stay out of the dataset cache key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from pydantic.types import StringConstraints

from newtune.config.base import Section

# TRL 1.14 DPO loss types computed per pair: a step's loss is their mean over every pair of the step,
# so micro-batches and accumulation give the same step as one big batch.
PAIR_LOSSES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
               "apo_zero", "apo_down", "discopop", "sigmoid_norm")
# TRL loss types that depend on which pairs share a micro-batch (sorting, a token mean over the batch).
BATCH_LOSSES = ("aot", "aot_unpaired", "sft")

# Keys that only one family of `rl:` methods reads (rl_beta is read by all); anywhere else they are refused.
# axolotl 0.21.0 passes dpo_label_smoothing for rl: dpo only, so rl: simpo runs TRL's CPO with none.
METHOD_KEYS = {"dpo_loss_type": ("dpo", "ipo"), "dpo_loss_weights": ("dpo", "ipo"), "dpo_label_smoothing": ("dpo", "ipo"),
               "orpo_alpha": ("orpo",), "simpo_gamma": ("simpo",), "cpo_alpha": ("simpo",)}

LossName = Annotated[str, StringConstraints(min_length=1)]


class PreferenceConfig(Section):
    rl_beta: float | None = Field(None, gt=0, description="β of the preference loss (TRL's beta; default 0.1). "
                                  "The older dpo_beta is migrated to it.")
    dpo_loss_type: list[LossName] | None = Field(
        None, min_length=1, description="DPO loss types (sigmoid, ipo, hinge, robust, ...); a list mixes them.")
    dpo_loss_weights: list[float] | None = Field(None, min_length=1, description="Weight of each dpo_loss_type.")
    dpo_label_smoothing: float | None = Field(
        None, ge=0, lt=0.5, description="Label smoothing of the robust and exo_pair losses (TRL's label_smoothing).")
    orpo_alpha: float | None = Field(
        None, gt=0, description="rl: orpo: weight λ of the odds-ratio term (axolotl passes it as TRL ORPOConfig.beta; "
        "default 0.1).")
    simpo_gamma: float | None = Field(None, ge=0, description="rl: simpo: target reward margin γ (required).")
    cpo_alpha: float | None = Field(
        None, ge=0, description="rl: simpo: weight of the chosen completion's NLL (TRL CPOConfig.cpo_alpha, default "
        "1.0; 0 gives the SimPO paper's loss).")

    @model_validator(mode="after")
    def _check(self) -> PreferenceConfig:
        for name in self.dpo_loss_type or ():
            if name in BATCH_LOSSES:
                raise ValueError(f"dpo_loss_type '{name}' is not supported by newtune yet: its loss depends on which "
                                 "pairs share a micro-batch")
            if name not in PAIR_LOSSES:
                raise ValueError(f"unknown dpo_loss_type '{name}'; known: {', '.join(PAIR_LOSSES)}")
        uses_smoothing = {"robust", "exo_pair"} & set(self.dpo_loss_type or ())
        if self.dpo_label_smoothing and self.dpo_loss_type is not None and not uses_smoothing:
            raise ValueError("dpo_label_smoothing is used only by the robust and exo_pair losses (TRL 1.14, which "
                             "axolotl 0.21.0 runs, ignores it for sigmoid); set dpo_loss_type: [robust] or remove it")
        if "exo_pair" in (self.dpo_loss_type or ()) and not self.dpo_label_smoothing:
            raise ValueError("dpo_loss_type exo_pair needs dpo_label_smoothing > 0 (the paper suggests 1e-3)")
        if self.dpo_loss_weights is not None and len(self.dpo_loss_weights) != len(self.dpo_loss_type or ["sigmoid"]):
            raise ValueError("dpo_loss_weights needs one weight per dpo_loss_type")
        return self

    @property
    def orpo_weight(self) -> float:
        """ORPO's λ: orpo_alpha, else rl_beta (axolotl passes either as TRL's beta), else TRL's default 0.1."""
        return self.orpo_alpha if self.orpo_alpha is not None else self.beta

    @property
    def nll_weight(self) -> float:
        """rl: simpo's cpo_alpha, else TRL CPOConfig's default 1.0 (axolotl passes it only when set)."""
        return 1.0 if self.cpo_alpha is None else self.cpo_alpha

    @property
    def beta(self) -> float:
        """rl_beta (config/migrate.py moves axolotl's older dpo_beta there), else TRL's default 0.1."""
        return 0.1 if self.rl_beta is None else self.rl_beta
