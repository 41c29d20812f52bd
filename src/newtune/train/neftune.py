"""NEFTune's noise on the input embeddings (neftune_noise_alpha)."""

from __future__ import annotations

import math
from typing import Any


class NEFTune:
    """NEFTune: uniform noise of scale alpha / sqrt(length × width) on the input embeddings, training only.

    length is the micro-batch's sequence length in its padded (or packed) layout, as in transformers;
    the loop sets it per micro-batch, so a flat (varlen) batch gets the noise the padded one would.
    """

    def __init__(self, model: Any, alpha: float) -> None:
        self.alpha, self.width = alpha, None
        model.get_input_embeddings().register_forward_hook(self.noise)

    def noise(self, module: Any, _args: Any, output: Any) -> Any:
        import torch

        if not module.training:
            return output
        scale = self.alpha / math.sqrt((self.width or output.shape[1]) * output.shape[2])
        return output + torch.zeros_like(output).uniform_(-scale, scale)
