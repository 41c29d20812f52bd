"""Every example config validates, and every row of its data encodes with trained tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newtune.data.pipeline import prepare_rows
from newtune.data.preference import prepare_pair_rows
from newtune.data.tokenizer import tokenizer_for
from newtune.load import load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))


def test_there_are_examples_for_each_family():
    names = {p.stem for p in EXAMPLES}
    assert {"quickstart", "alpaca", "chat_template", "sharegpt", "input_output", "completion", "dpo", "ipo", "orpo", "simpo"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_encodes(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # example paths are relative to the repository root
    cfg = load_config(path, [f"dataset_prepared_path={tmp_path}"])
    tok = tokenizer_for(cfg.model, light=True)
    prepare = prepare_pair_rows if cfg.data.rl else prepare_rows
    rows = prepare(cfg.data, tok, seed=cfg.train.seed)
    stats = rows.summary.train
    assert rows.summary.train_rows > 0 and stats.rows_out == stats.rows_in, stats
    assert stats.trainable > 0 and stats.zero_trainable == 0, stats
    assert os.path.isdir(rows.summary.cache_path)
