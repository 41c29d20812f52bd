"""The cache key covers config, tokenizer, files and code; writes are atomic and locked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from newtune.data import cache
from newtune.data.pipeline import prepare_rows
from newtune.data.tokenizer import load_tokenizer
from newtune.errors import DataError
from newtune.load import load_config

ROWS = [{"segments": [{"text": "q", "label": False}, {"text": f" a{i}", "label": True}]} for i in range(3)]


@pytest.fixture
def setup(tmp_path, smol_tok_dir):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    tok = load_tokenizer(str(smol_tok_dir), light=True)

    def run(tok=tok, **keys):
        raw = {"datasets": [{"path": str(path), "type": "input_output"}], "dataset_prepared_path": str(tmp_path / "prep"),
               **keys}
        return prepare_rows(load_config(None, raw=raw).data, tok, seed=0).summary

    return path, tok, run


def entries(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def test_nothing_changed_reuses_the_cache(setup, tmp_path):
    _, _, run = setup
    first, second = run(), run()
    assert (first.cached, second.cached) == (False, True)
    assert first.cache_path == second.cache_path
    assert entries(tmp_path / "prep") == [os.path.basename(first.cache_path)]


def test_changed_file_retokenizes(setup):
    path, _, run = setup
    first = run()
    path.write_text(path.read_text() + json.dumps(ROWS[0]) + "\n")
    second = run()
    assert not second.cached and second.cache_path != first.cache_path and second.train.rows_in == 4


def test_changed_field_retokenizes(setup):
    path, _, run = setup
    base = run()
    entry = {"path": str(path), "type": "input_output", "shards": 1}  # a dataset key changed (same rows)
    for keys in ({"train_on_inputs": True}, {"sequence_len": 1024}, {"datasets": [entry]}):
        other = run(**keys)
        assert not other.cached and other.cache_path != base.cache_path, keys


def test_changed_template_or_tokenizer_retokenizes(setup, smol_tok_dir):
    _, tok, run = setup
    base = run()
    other_tok = load_tokenizer(str(smol_tok_dir), light=True)
    other_tok.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert run(tok=other_tok).cache_path != base.cache_path
    assert run(tok=load_tokenizer(str(smol_tok_dir), light=True)).cached


def test_changed_code_retokenizes(setup, monkeypatch):
    _, _, run = setup
    base = run()
    monkeypatch.setattr(cache, "_code_hash", "something else")
    assert run().cache_path != base.cache_path


def test_file_identity_content_hash(tmp_path):
    p = tmp_path / "f.jsonl"
    p.write_text("abc")
    fast = cache.file_identity(p)
    slow = cache.file_identity(p, content=True)
    assert slow == "3:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    os.utime(p, ns=(1, 1))
    assert cache.file_identity(p) != fast and cache.file_identity(p, content=True) == slow


def test_failed_build_leaves_no_entry(tmp_path, smol_tok_dir):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    data = load_config(None, raw={"datasets": [{"path": str(path), "type": "input_output"}],
                                  "dataset_prepared_path": str(tmp_path / "prep")}).data
    with pytest.raises(DataError, match="d.jsonl line 2: invalid JSON"):
        prepare_rows(data, load_tokenizer(str(smol_tok_dir), light=True), seed=0)
    assert entries(tmp_path / "prep") == []


SCRIPT = """
import sys
from newtune.load import load_config
from newtune.data.pipeline import prepare_rows
from newtune.data.tokenizer import load_tokenizer
data = load_config(None, raw={"datasets": [{"path": sys.argv[1], "type": "input_output"}],
                              "dataset_prepared_path": sys.argv[2]}).data
s = prepare_rows(data, load_tokenizer(sys.argv[3], light=True), seed=0).summary
print(s.cached, s.train.rows_out)
"""


def test_two_processes_share_one_entry(setup, tmp_path, smol_tok_dir):
    path, _, _ = setup
    args = [sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "prep"), str(smol_tok_dir)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outs == ["False 3", "True 3"]
    assert len(entries(tmp_path / "prep")) == 1


def test_edited_jinja_template_file_retokenizes(tmp_path, smol_tok_dir):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]
    data_file = tmp_path / "chat.jsonl"
    data_file.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    template = tmp_path / "t.jinja"
    body = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    template.write_text(body)
    tok = load_tokenizer(str(smol_tok_dir), light=True)
    raw = {"datasets": [{"path": str(data_file), "type": "chat_template"}], "chat_template": "jinja",
           "chat_template_jinja": str(template), "dataset_prepared_path": str(tmp_path / "prep")}

    def run():
        return prepare_rows(load_config(None, raw=raw).data, tok, seed=0)

    first = run()
    assert run().summary.cached
    os.utime(template, ns=(template.stat().st_atime_ns, template.stat().st_mtime_ns + 10**9))
    template.write_text(body.replace("\n{{ m['content'] }}", " {{ m['content'] }}"))
    second = run()
    assert not second.summary.cached and second.summary.cache_path != first.summary.cache_path
    assert second.train.lengths()[0] < first.train.lengths()[0]


def test_split_shuffle_and_processes_reuse_the_cache(setup):
    """val_set_size, shuffle_merged_datasets and dataset_num_proc act on the cached rows: no re-tokenizing."""
    _, _, run = setup
    base = run()
    for keys in ({"val_set_size": 1}, {"shuffle_merged_datasets": False}, {"dataset_num_proc": 2}):
        other = run(**keys)
        assert other.cached and other.cache_path == base.cache_path, keys
