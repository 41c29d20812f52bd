"""The import rules of ARCHITECTURE.md §1: config and data never import torch, transformers, model or
train; config never imports data; model never imports train. Checked in the source (every import,
also inside functions) and at run time (`sys.modules` after real `newtune` commands)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "newtune"
HEAVY = ("torch", "transformers", "peft", "accelerate", "bitsandbytes")
FORBIDDEN = {
    "config": (*HEAVY, "newtune.data", "newtune.model", "newtune.train", "newtune.export", "newtune.cli",
               "newtune.load"),
    "data": (*HEAVY, "newtune.model", "newtune.train", "newtune.export", "newtune.cli", "newtune.load"),
    "model": ("newtune.train", "newtune.export", "newtune.cli"),
}
# Where a rule has a reason to bend, with the reason. Nothing else may.
ALLOWED = {
    # the first load of a GGUF or SentencePiece tokenizer is built by transformers (then kept as tokenizer.json)
    ("data/tokenizer.py", "transformers"),
}


def imported_names(path: Path, root: Path = SRC) -> set[str]:
    """Every module an import statement in `path` names (relative imports resolved)."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return names


def violations(layer: str) -> list[str]:
    out = []
    for path in sorted((SRC / layer).rglob("*.py")):
        rel = str(path.relative_to(SRC))
        for name in sorted(imported_names(path)):
            for banned in FORBIDDEN[layer]:
                if (name == banned or name.startswith(banned + ".")) and (rel, banned) not in ALLOWED:
                    out.append(f"{rel} imports {name}")
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer):
    assert violations(layer) == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The rule test itself: a function-level import and a relative one are both found."""
    pkg = tmp_path / "newtune" / "data"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text("def f():\n    import torch\n    from ..train import loop\n")
    assert {"torch", "newtune.train", "newtune.train.loop"} <= imported_names(f, tmp_path / "newtune")


ALPACA_ROW = {"instruction": "Say hi", "input": "", "output": "Hi!"}
CHAT_ROW = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


def preprocess_modules(tmp_path: Path, name: str, base_model: str | None, ds_type: str, row: dict) -> list[str]:
    """Run `newtune preprocess` (the real CLI) in a fresh process; the heavy modules it imported."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    data = tmp_path / f"{name}.jsonl"
    data.write_text(json.dumps(row) + "\n")
    cfg = tmp_path / f"{name}.yml"
    keys = {"datasets": [{"path": str(data), "type": ds_type}], "sequence_len": 64,
            "dataset_prepared_path": str(tmp_path / f"prepared-{name}")}
    cfg.write_text(yaml.safe_dump({**({"base_model": base_model} if base_model else {}), **keys}))
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
            f"sys.argv = ['newtune', 'preprocess', {str(cfg)!r}]\n"
            "from newtune.cli import run\nrun()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NEWTUNE_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.slow
def test_preprocess_never_imports_torch(tmp_path, smol_tok_dir, mistral_tok_dir):
    """A chat template on a tokenizer.json directory; the embedded model and a Mistral SentencePiece directory
    (tokenizer_config with add_bos_token) once their tokenizer is converted (the first run may need transformers)."""
    assert preprocess_modules(tmp_path, "chat", str(smol_tok_dir), "chat_template", CHAT_ROW) == []
    for name, base in (("embedded", None), ("mistral", str(mistral_tok_dir))):
        preprocess_modules(tmp_path, name + "-first", base, "alpaca", ALPACA_ROW)
        assert preprocess_modules(tmp_path, name, base, "alpaca", ALPACA_ROW) == [], name


def test_no_source_file_over_400_lines():
    """A module that grows past 400 lines holds more than one concern: split it (ARCHITECTURE §1)."""
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
