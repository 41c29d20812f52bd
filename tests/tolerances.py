"""Tolerances that follow from the computation compared, never tuned on one CPU.

Two float32 evaluations of the same sum of n terms that differ only in the order of their additions (another
SIMD width or matmul blocking on another CPU, the loss taken in chunks, a packed instead of a padded batch)
each carry a rounding error of at most about (n - 1)·u·Σ|x| (u = eps / 2; Higham, "Accuracy and Stability of
Numerical Algorithms", §4.2), so they differ by at most about n·eps·Σ|x|. Through a network the errors of
successive sums add up to first order: the tolerance of a result is eps times the total length of the sums
along its computation (`decoder_terms`), times the result's scale. The scale of a tensor is its largest entry,
so an entry that is itself a near-cancelling sum is judged against its tensor's scale, not its own (tiny) size.

Pure reductions of positive terms (softmax and logsumexp over the vocabulary) are summed by torch's CPU
kernels in a cascade (a tree), whose error grows with log2(n), not n: they count log2(V).
"""

from __future__ import annotations

import math

import torch

EPS = torch.finfo(torch.float32).eps  # 2**-23: float32 rounding of one addition is at most eps/2 relative


def decoder_terms(config, tokens: int) -> int:
    """Total length of the float32 sums along one forward pass of a Llama-style decoder over `tokens`.

    Per layer: two RMSNorms (h each), the q/k/v projections (h), q·k (head_dim), attention softmax and
    attention·v (up to `tokens` each), o_proj (h), gate/up (h), down (intermediate). Then the final norm and
    the head (h each), the logsumexp over the vocabulary (log2 V, a cascade) and the loss sum over tokens.
    """
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = h // config.num_attention_heads
    per_layer = 5 * h + head_dim + 2 * tokens + inter
    return layers * per_layer + 2 * h + math.ceil(math.log2(config.vocab_size)) + tokens


def backward_terms(config, tokens: int) -> int:
    """Forward and backward: the backward runs the same sums transposed, and each weight's gradient
    sums its contributions over the tokens."""
    return 2 * decoder_terms(config, tokens) + tokens


def rel_tol(terms: int, dtype: torch.dtype = torch.float32) -> float:
    """Relative tolerance of a result whose computation sums `terms` terms of `dtype` in another order."""
    return terms * torch.finfo(dtype).eps


def assert_close_sums(got: torch.Tensor, want: torch.Tensor, terms: int, msg: str | None = None) -> None:
    """got and want agree to within `terms`·eps (of their dtype) of want's scale (its largest entry): see the
    module docstring."""
    scale = want.detach().abs().max().item()
    torch.testing.assert_close(got, want, rtol=0.0, atol=rel_tol(terms, want.dtype) * scale, msg=msg)


def training_rel_tol(config, tokens: int, steps: int) -> float:
    """Losses of two training runs that differ only in the order of their float32 sums, after `steps` steps.

    Each step adds its forward and backward rounding to the weights (Adam's update is the gradient scaled by
    its own running magnitude, so its relative error is the gradient's): to first order the relative
    differences of the later losses grow linearly with the steps.
    """
    return rel_tol(steps * backward_terms(config, tokens))
