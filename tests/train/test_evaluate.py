"""Eval loss: the token-mean cross-entropy over the whole eval set, whatever the batching."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_run import tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.data.rows import Rows
from newtune.train.batches import epoch_plan, eval_batches
from newtune.train.evaluate import evaluate_loss
from tolerances import decoder_terms, rel_tol

ROWS = [  # input_ids, labels (-100: not trained)
    ([1, 5, 6, 7, 8, 2], [-100, -100, -100, 7, 8, 2]),
    ([1, 9, 10, 2], [-100, -100, 10, 2]),
    ([1, 11, 12, 13, 14, 15, 16, 2], [-100, -100, -100, -100, 14, 15, 16, 2]),
]


def eval_set():
    return Rows.of_columns({"input_ids": [r[0] for r in ROWS], "labels": [r[1] for r in ROWS],
                            "length": [len(r[0]) for r in ROWS]})


def reference_loss(model) -> float:
    """transformers' own loss per row, weighted by each row's trained tokens."""
    total = n = 0
    with torch.no_grad():
        for ids, labels in ROWS:
            k = sum(1 for x in labels[1:] if x != -100)
            total += model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item() * k
            n += k
    return total / n


@pytest.mark.parametrize(("batch", "packed"), [(1, False), (2, False), (3, True)])
def test_eval_loss_is_the_token_mean(tiny_run, tiny_model_dir, batch, packed):
    from transformers import AutoModelForCausalLM

    cfg, _ = tiny_run(eval_batch_size=batch, eval_sample_packing=packed)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.train()  # evaluate_loss switches to eval mode and back
    got = evaluate_loss(model, eval_set(), cfg, pad_id=0)
    assert got.tokens == 3 + 2 + 4 and got.rows == 3
    # Other batch shapes (padded, packed) than one row at a time: one forward's sums, reordered.
    assert got.loss == pytest.approx(reference_loss(model.eval()), rel=rel_tol(decoder_terms(model.config, 3 * 8)))
    assert got.perplexity == math.exp(got.loss)  # exact: the same float64 through the same exp


def test_every_rank_runs_the_same_number_of_eval_forwards():
    ds = eval_set()
    kw = {"batch_size": 1, "packed": False, "capacity": 64, "pad_id": 0, "pad_to": None, "world": 2}
    r0 = list(eval_batches(ds, rank=0, **kw))
    r1 = list(eval_batches(ds, rank=1, **kw))
    assert [c for _, c in r0] == [True, True] and [c for _, c in r1] == [True, False]
    assert sum(b.n_trained for b, c in r0 + r1 if c) == 9


def test_epoch_plans_are_seeded_and_cover_every_row_once():
    lengths = torch.tensor([5, 3, 4, 2, 6, 7, 1]).numpy()
    a = epoch_plan(lengths, batch_size=2, packed=False, capacity=8, seed=1)
    assert a == epoch_plan(lengths, batch_size=2, packed=False, capacity=8, seed=1)
    flat = sorted(int(i) for micro in a for seq in micro for i in seq)
    assert flat == list(range(7)) and [len(m) for m in a] == [2, 2, 2, 1]
    b = epoch_plan(lengths, batch_size=2, packed=False, capacity=8, seed=2)
    assert [s.tolist() for m in a for s in m] != [s.tolist() for m in b for s in m]
    packed = epoch_plan(lengths, batch_size=1, packed=True, capacity=8, seed=1)
    assert sorted(int(i) for m in packed for s in m for i in s) == list(range(7))
    assert all(int(lengths[s].sum()) <= 8 for m in packed for s in m)


def test_run_evaluate_reads_a_full_finetune_from_output_dir(tiny_run):
    import json
    from pathlib import Path

    from newtune.train.evaluate import run_evaluate
    from newtune.train.loop import run_training

    cfg, console = tiny_run(adapter=None, lora_target_linear=False, val_set_size=2, max_steps=2)
    trained = run_training(cfg, console)
    got = run_evaluate(cfg, console)
    # The same weights (saved in float32, exactly) through the same batches and kernels: the same sums.
    assert got.rows == 2 and got.loss == trained.eval_loss
    assert json.loads((Path(cfg.train.output_dir) / "eval.json").read_text())["loss"] == got.loss
