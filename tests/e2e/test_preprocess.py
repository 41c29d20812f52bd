"""`newtune preprocess` end to end: summary, --debug, --dump, torch-free, and exit 2 on bad data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NEWTUNE = str(Path(sys.executable).parent / "newtune")
ROWS = [{"segments": [{"text": "Q: hi\n", "label": False}, {"text": "A: hello", "label": True}]},
        {"segments": [{"text": "Q: bye\n", "label": False}, {"text": "", "label": True}]}]


def write_config(tmp_path: Path, smol_tok_dir: Path, data_text: bytes | str, ds_type: str = "input_output",
                 path: str | None = None) -> Path:
    data = tmp_path / "data.jsonl"
    data.write_bytes(data_text if isinstance(data_text, bytes) else data_text.encode())
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"base_model: {smol_tok_dir}\ndatasets:\n  - path: {path or data}\n    type: {ds_type}\n"
                   f"dataset_prepared_path: {tmp_path / 'prep'}\nsequence_len: 64\nshuffle_merged_datasets: false\n")
    return cfg


def newtune(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEWTUNE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    return subprocess.run([NEWTUNE, *args], capture_output=True, text=True, env=env, timeout=120)


def test_preprocess_summary_debug_and_dump(tmp_path, smol_tok_dir):
    cfg = write_config(tmp_path, smol_tok_dir, "".join(json.dumps(r) + "\n" for r in ROWS))
    dump = tmp_path / "out" / "dump.jsonl"
    r = newtune("preprocess", str(cfg), "--debug", "--debug-num-examples", "1", "--dump", str(dump), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    # what a user keeps (the rows shown, the summary) on stdout; progress on stderr
    assert "Q(-100, 65) :(-100, 42) ␣hi(-100, 15876) \\n(-100, 198) A(49, 49) :(42, 42) ␣hello(33662, 33662)" in r.stdout
    assert "rows read" in r.stdout and "trainable tokens" in r.stdout and "3 (25.0%)" in r.stdout
    assert "1 train rows have no trainable token" in r.stdout and "data.jsonl line 2" in r.stdout
    assert "tokenizing →" in r.stderr and "rows read" not in r.stderr
    pieces = newtune("preprocess", str(cfg), "--debug-pieces", "--debug-num-examples", "1", tmp_path=tmp_path)
    assert "Q(-100, 65) :(-100, 42) Ġhi(-100, 15876) Ċ(-100, 198) A(49, 49)" in pieces.stdout
    text = newtune("preprocess", str(cfg), "--debug-text-only", "--debug-num-examples", "1", tmp_path=tmp_path)
    assert "[[Q: hi\n]]A: hello" in text.stdout  # no terminal: masked spans in brackets
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert rows == [
        {"input_ids": [65, 42, 15876, 198, 49, 42, 33662], "labels": [-100, -100, -100, -100, 49, 42, 33662],
         "attention_mask": [1] * 7},
        {"input_ids": [65, 42, 411, 85, 198], "labels": [-100] * 5, "attention_mask": [1] * 5},
    ]
    again = newtune("preprocess", str(cfg), tmp_path=tmp_path)
    assert again.returncode == 0 and "from cache" in again.stdout


def test_preprocess_does_not_import_torch(tmp_path, smol_tok_dir):
    cfg = write_config(tmp_path, smol_tok_dir, json.dumps(ROWS[0]) + "\n")
    code = ("import sys; from rich.console import Console; from newtune.config.load import load_config; "
            "from newtune.data.pipeline import run_preprocess; "
            f"run_preprocess(load_config({str(cfg)!r}), Console(stderr=True), debug=True); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NEWTUNE_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


BAD = {
    "malformed": ('{"segments": []}\n{"segments": [}\n', "input_output", None,
                  "error: data.jsonl line 2: invalid JSON: Expecting value (column 15)"),
    "missing_field": ('{"text": "x", "id": 1}\n', "input_output", None,
                      "error: data.jsonl line 1 (input_output): missing field 'segments' (row has: text, id)"),
    "wrong_type": ('{"text": ["a"]}\n', "completion", None,
                   "error: data.jsonl line 1 (completion): field 'text' must be text, got list ['a']"),
    "non_utf8": (b'{"text": "caf\xe9"}\n', "completion", None, "error: data.jsonl line 1: not UTF-8 text"),
    "empty": ("", "completion", None, "error: datasets[0] {data}: the file is empty (0 bytes)"),
    "hub_offline": ("", "completion", "someone/dataset",
                    "error: someone/dataset: not a local path, and the dataset hub is unreachable"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_exits_2_with_one_message(tmp_path, smol_tok_dir, case):
    text, ds_type, path, expected = BAD[case]
    cfg = write_config(tmp_path, smol_tok_dir, text, ds_type, path)
    r = newtune("preprocess", str(cfg), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(expected.format(data=tmp_path / "data.jsonl")), r.stderr
    assert "Traceback" not in r.stderr
    prep = tmp_path / "prep"
    assert not prep.exists() or [p.name for p in prep.iterdir() if not p.name.endswith(".lock")] == []
