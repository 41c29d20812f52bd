"""loss_watchdog_threshold / _patience and early_stopping_patience, as axolotl's callbacks stop a run."""

from __future__ import annotations

import types
from pathlib import Path

from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.train import loop
from newtune.train.checkpoint import checkpoints
from newtune.train.stopping import LOSS_BLOWUP, NO_EVAL_GAIN, Stopper


def test_watchdog_counts_consecutive_logged_losses_above_the_threshold():
    s = Stopper(threshold=2.0, patience=3)
    assert [s.check({"loss": v}) for v in (3, 3, 1, 3, 3)] == [None] * 5  # the 1 resets the count
    assert s.check({"loss": 2.5}) == LOSS_BLOWUP and "loss_watchdog_threshold 2" in s.why


def test_early_stopping_counts_evaluations_without_a_better_eval_loss():
    s = Stopper(eval_patience=2)
    assert [s.check({"eval_loss": v}) for v in (1.0, 0.9, 0.95)] == [None] * 3
    assert s.check({"eval_loss": 0.9}) == NO_EVAL_GAIN  # equal is no improvement (transformers' rule)


def test_loss_watchdog_stops_the_run_and_keeps_a_checkpoint(tiny_run):
    cfg, console = tiny_run(out="watched", loss_watchdog_threshold=1e-6, loss_watchdog_patience=2)
    result = loop.run_training(cfg, console)
    assert result.stopped == LOSS_BLOWUP and result.steps == 2 and result.interrupted
    assert len(losses(cfg.train.output_dir)) == 2
    (kept,) = checkpoints(Path(cfg.train.output_dir))
    assert kept == result.last_checkpoint
    plain, console = tiny_run(out="plain", loss_watchdog_threshold=1e6)
    assert loop.run_training(plain, console).steps == 4 and not checkpoints(Path(plain.train.output_dir))


def test_early_stopping_patience_ends_training_after_stale_evaluations(tiny_run, monkeypatch):
    evals = iter([1.0, 0.8, 0.9, 0.85, 0.7])
    monkeypatch.setattr(loop, "run_eval", lambda run: types.SimpleNamespace(loss=next(evals), perplexity=1.0))
    cfg, console = tiny_run(rows=12, val_set_size=2, eval_steps=1, num_epochs=2, early_stopping_patience=2)
    result = loop.run_training(cfg, console)
    assert result.steps == 4 and result.stopped == NO_EVAL_GAIN and not result.interrupted
    assert (Path(cfg.train.output_dir) / "adapter_model.safetensors").exists() and result.eval_loss == 0.85
