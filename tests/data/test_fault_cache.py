"""Faults in the dataset cache and in temp files: damaged entries are rebuilt, what killed runs left is
removed at the next run (only when its process is gone), and edits that keep size and mtime are seen."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newtune.config.load import load_config
from newtune.data import cache
from newtune.data.inspect import write_dump
from newtune.data.pipeline import prepare_rows
from newtune.data.tokenizer import load_tokenizer
from newtune.errors import NewtuneError

ROWS = [{"segments": [{"text": "q", "label": False}, {"text": f" a{i}", "label": True}]} for i in range(3)]
NEWTUNE = str(Path(sys.executable).parent / "newtune")


@pytest.fixture
def setup(tmp_path, smol_tok_dir):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    tok = load_tokenizer(str(smol_tok_dir), light=True)

    def run(**keys):
        raw = {"datasets": [{"path": str(path), "type": "input_output"}], "dataset_prepared_path": str(tmp_path / "prep"),
               **keys}
        return prepare_rows(load_config(None, raw=raw).data, tok, seed=0)

    return path, run


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_truncated_rows_file_is_rebuilt_with_a_warning(setup, caplog):
    _, run = setup
    first = run().summary
    rows = Path(first.cache_path) / cache.ROWS_FILE
    size = rows.stat().st_size
    rows.write_bytes(rows.read_bytes()[: size // 2])
    with caplog.at_level(logging.WARNING, logger="newtune.data.cache"):
        again = run()
    assert not again.summary.cached and again.summary.train_rows == 3 and len(again.train) == 3
    assert rows.stat().st_size == size
    assert f"{first.cache_path} is damaged ({cache.ROWS_FILE} has {size // 2} bytes where {size} were written)" in caplog.text
    assert run().summary.cached  # rebuilt and verified: reused from now on


def test_entry_without_a_manifest_or_meta_is_rebuilt(setup):
    _, run = setup
    entry = Path(run().summary.cache_path)
    meta = json.loads((entry / cache.META_FILE).read_text())
    del meta["files"]
    (entry / cache.META_FILE).write_text(json.dumps(meta))
    assert not run().summary.cached
    (entry / cache.META_FILE).unlink()
    assert not run().summary.cached and run().summary.cached


def test_same_size_corruption_is_caught_in_content_mode(setup, monkeypatch):
    _, run = setup
    entry = Path(run().summary.cache_path)
    raw = bytearray((entry / cache.ROWS_FILE).read_bytes())
    raw[-9] ^= 0xFF
    (entry / cache.ROWS_FILE).write_bytes(bytes(raw))
    assert cache.entry_damage(entry) is None  # sizes only, as on every run in stat mode
    assert "rows.arrow differs from what was written" in cache.entry_damage(entry, contents=True)
    monkeypatch.setenv(cache.IDENTITY_ENV, "content")
    assert not run().summary.cached


KILLED_PREPROCESS = """
import os, signal, sys
from pathlib import Path
from newtune.data import cache
with cache.staging(Path(sys.argv[1]), "0" * 64) as tmp:
    (tmp / cache.ROWS_FILE).write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_staging_dir_of_a_killed_preprocess_is_removed_at_the_next_run(setup, tmp_path):
    _, run = setup
    prep = tmp_path / "prep"
    res = subprocess.run([sys.executable, "-c", KILLED_PREPROCESS, str(prep)], capture_output=True, timeout=120)
    assert res.returncode == -signal.SIGKILL
    (left,) = prep.glob(cache.STAGING_PREFIX + "*")
    live = prep / f"{cache.STAGING_PREFIX}{cache.owner_tag()}~{'1' * 16}-abc"  # this process: still writing
    other_host = prep / f"{cache.STAGING_PREFIX}{dead_pid()}@elsewhere.example~{'2' * 16}-abc"  # not ours to judge
    live.mkdir()
    other_host.mkdir()
    run()
    assert not left.exists()
    assert live.is_dir() and other_host.is_dir()


KILLED_DUMP = """
import os, signal, sys
from newtune.data.inspect import write_dump
def rows():
    yield {"input_ids": [1, 2], "labels": [-100, 2]}
    os.kill(os.getpid(), signal.SIGKILL)
write_dump(rows(), sys.argv[1])
"""


def test_temp_files_of_a_killed_dump_are_removed_at_the_next_dump(tmp_path):
    out = tmp_path / "rows.jsonl"
    res = subprocess.run([sys.executable, "-c", KILLED_DUMP, str(out)], capture_output=True, timeout=120)
    assert res.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob(".rows.jsonl.tmp-*")  # what it had written, killed before the rename
    assert not out.exists()
    legacy = tmp_path / f".rows.jsonl.tmp-{dead_pid()}"  # the name older versions used: the pid alone
    legacy.write_text("partial")
    live = tmp_path / f".rows.jsonl.tmp-{os.getppid()}"  # a live process's: kept
    live.write_text("partial")
    other = tmp_path / f".other.jsonl.tmp-{dead_pid()}"  # another dump's name: not this dump's business
    other.write_text("partial")
    assert write_dump([{"input_ids": [5], "labels": [5]}], out) == 1
    assert not left.exists() and not legacy.exists()
    assert live.exists() and other.exists()
    assert json.loads(out.read_text())["input_ids"] == [5]


def same_size_same_mtime_edit(path: Path) -> None:
    """What `cp -p` or `rsync -a` of an edited copy does: other bytes, same size, same mtime."""
    st = path.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    text = path.read_text().replace(" a1", " b1")
    assert len(text) == st.st_size
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.mark.parametrize("mode", ["stat", "content"])
def test_an_edit_that_keeps_size_and_mtime_retokenizes(setup, monkeypatch, mode):
    path, run = setup
    monkeypatch.setenv(cache.IDENTITY_ENV, mode)
    first = run()
    same_size_same_mtime_edit(path)
    second = run()
    assert not second.summary.cached and second.summary.cache_path != first.summary.cache_path


def test_content_mode_keeps_the_entry_when_only_the_times_change(setup, monkeypatch):
    path, run = setup
    monkeypatch.setenv(cache.IDENTITY_ENV, "content")
    run()
    os.utime(path, ns=(1, 1))
    assert run().summary.cached
    monkeypatch.setenv(cache.IDENTITY_ENV, "stat")
    run()
    os.utime(path, ns=(2, 2))
    assert not run().summary.cached


def test_unknown_identity_mode_is_a_user_error(setup, monkeypatch, tmp_path, smol_tok_dir):
    path, run = setup
    monkeypatch.setenv(cache.IDENTITY_ENV, "maybe")
    with pytest.raises(NewtuneError, match="unknown value 'maybe'"):
        run()
    config = tmp_path / "c.yml"
    config.write_text(json.dumps({"datasets": [{"path": str(path), "type": "input_output"}],
                                  "dataset_prepared_path": str(tmp_path / "prep2"), "base_model": str(smol_tok_dir)}))
    res = subprocess.run([NEWTUNE, "preprocess", str(config)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, cache.IDENTITY_ENV: "maybe"})
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert cache.IDENTITY_ENV in res.stderr and "stat" in res.stderr and "content" in res.stderr
    assert not (tmp_path / "prep2").exists() or not any((tmp_path / "prep2").iterdir())
    shutil.rmtree(tmp_path / "prep2", ignore_errors=True)
