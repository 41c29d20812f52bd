"""tiled_mlp (model/patches.py patch 3): each MLP runs in checkpointed slices of the sequence, with the same result."""

from __future__ import annotations

import copy

import torch

from conftest import tiny_model
from newtune.model.patches import tile_mlps
from tolerances import assert_close_sums, backward_terms


def wide_saved(model, ids) -> tuple[list[int], dict]:
    """Widths (last dim) of the tensors autograd keeps for the backward that are intermediate_size wide, and the
    gradients of a loss over every position."""
    inter, widths = model.config.intermediate_size, []

    def pack(t):
        if t.dim() >= 2 and t.shape[-1] == inter and t.shape[-2] == ids.shape[1]:
            widths.append(t.shape[-1])
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(input_ids=ids, use_cache=False).logits
    torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).backward()
    return widths, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_tiled_mlp_keeps_no_full_width_activations_and_gives_the_same_gradients():
    model = tiny_model(300)
    tiled = copy.deepcopy(model)
    assert tile_mlps(tiled, True, 4) == 2  # both decoder layers
    assert tile_mlps(copy.deepcopy(model), False, 4) == 0  # the switch off: untouched
    ids = torch.randint(0, 300, (1, 40), generator=torch.Generator().manual_seed(0))
    plain_wide, plain_grads = wide_saved(model, ids)
    tiled_wide, tiled_grads = wide_saved(tiled, ids)
    assert plain_wide  # transformers' MLP keeps its (tokens × intermediate_size) activations
    assert not tiled_wide  # tiled: only each slice's inputs are kept; the activations are rebuilt in the backward
    terms = backward_terms(model.config, ids.shape[1])  # the same sums, the MLP's weight gradients in 4 slices
    for name, grad in plain_grads.items():
        assert_close_sums(tiled_grads[name], grad, terms, msg=name)


def test_upstream_mlp_still_keeps_its_activations():
    """Why patch 3: transformers' Llama MLP still saves the full-width activations of every token (when it stops,
    tiling is no longer needed for memory)."""
    model = tiny_model(300)
    ids = torch.randint(0, 300, (1, 24), generator=torch.Generator().manual_seed(1))
    assert wide_saved(model, ids)[0]
