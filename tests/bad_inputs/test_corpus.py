"""The bad-input corpus: every case is a user's mistake that must end in one clear message, exit 2.

Each `*.yml` file here is one class of mistakes (config, cli, env, data, paths, models, checkpoints,
caches); each entry in it is one case:

    - id: data-alpaca-instruction-missing-late     # unique across the corpus
      argv: [preprocess, c.yml]                    # the newtune command line, run in the case's dir
      files: {c.yml: "...", d.jsonl: "..."}        # written first; @SMOL_TOK@ / @TINY_MODEL@ / @MISTRAL_TOK@
                                                   #   are replaced by the test fixtures' paths
      setup: bad_setup_models:not_gguf            # optional: module:function(case_dir, fixtures) after files,
                                                   #   the module beside this file
      env: {NEWTUNE_CPU_BF16: maybe}               # optional extra environment
      expect: ["d.jsonl", "row 9", "instruction"]  # each must appear in stderr (the message names
                                                   #   file, line/row, field and what to do)

The run must exit 2, print no traceback, and leave nothing behind: no new file in the case's directory
(beyond those the case lists in `may_remain`) and no new entry in the prepared-data cache.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
NEWTUNE = str(Path(sys.executable).parent / "newtune")
CLASSES = sorted(p.stem for p in HERE.glob("*.yml"))


def load_cases() -> list[tuple[str, dict]]:
    cases = []
    for cls in CLASSES:
        for case in yaml.safe_load((HERE / f"{cls}.yml").read_text()) or []:
            cases.append((cls, case))
    return cases


CASES = load_cases()


def test_corpus_is_broad():
    """At least 80 cases, every class represented, ids unique (a duplicated id would hide a case)."""
    ids = [c["id"] for _, c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert len(ids) >= 80
    counts = {cls: sum(1 for k, _ in CASES if k == cls) for cls in CLASSES}
    assert set(counts) >= {"cli", "config", "env", "data", "paths", "models", "checkpoints", "caches"}, counts
    assert all(n >= 2 for n in counts.values()), counts


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory) -> Path:
    """One newtune cache per test worker: the embedded model is converted once, prepared entries are seen."""
    return tmp_path_factory.mktemp("corpus_cache")


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize(("cls", "case"), CASES, ids=[f"{cls}:{c['id']}" for cls, c in CASES])
def test_bad_input(cls, case, tmp_path, corpus_cache, request):
    fixtures = {}
    for name, fixture in (("@SMOL_TOK@", "smol_tok_dir"), ("@TINY_MODEL@", "tiny_model_dir"),
                          ("@MISTRAL_TOK@", "mistral_tok_dir")):
        if any(name in str(v) for v in [*case.get("files", {}).values(), *case["argv"]]):
            fixtures[name] = str(request.getfixturevalue(fixture))

    def fill(text: str) -> str:
        for name, value in fixtures.items():
            text = text.replace(name, value)
        return text

    for rel, text in case.get("files", {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(fill(text))
    if "setup" in case:
        module, func = case["setup"].split(":")
        getattr(importlib.import_module(module), func)(tmp_path, fixtures)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWTUNE_")}
    env.update(NEWTUNE_CACHE=str(corpus_cache), NEWTUNE_CPU_BF16="0", COLUMNS="200")
    env.update({k: fill(str(v)) for k, v in case.get("env", {}).items()})  # a case's own value wins
    before, cache_before = snapshot(tmp_path), snapshot(corpus_cache / "prepared")
    res = subprocess.run([NEWTUNE, *map(fill, case["argv"])], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300, stdin=subprocess.DEVNULL)
    err = res.stderr
    assert "Traceback" not in err, err
    assert res.returncode == 2, f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {err}"
    for needle in case["expect"]:
        assert fill(needle) in err, f"{needle!r} not in stderr:\n{err}"
    left = snapshot(tmp_path) - before - set(case.get("may_remain", []))
    assert not left, f"left behind: {sorted(left)}"
    new_entries = {p for p in snapshot(corpus_cache / "prepared") - cache_before if "/" not in p}
    assert not {p for p in new_entries if not p.endswith(".lock")}, f"cache entries written: {new_entries}"
