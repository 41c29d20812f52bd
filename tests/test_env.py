"""newtune/env.py: one table of every NEWTUNE_* variable, each value checked when a command starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newtune import env
from newtune.errors import NewtuneError

SRC = Path(__file__).resolve().parent.parent / "src" / "newtune"
NEWTUNE = str(Path(sys.executable).parent / "newtune")


def test_every_variable_read_in_src_is_declared():
    """A NEWTUNE_* name anywhere in the sources (a read, a constant naming one) must be in the table."""
    found = {name: str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             for name in re.findall(r"\bNEWTUNE_[A-Z0-9_]*[A-Z0-9]\b", p.read_text(encoding="utf-8"))}
    assert {"NEWTUNE_CPU_BF16", "NEWTUNE_CACHE", "NEWTUNE_CACHE_IDENTITY", "NEWTUNE_VERBOSE",
            "NEWTUNE_RUN_ID"} <= set(found)  # the grep sees them: a pattern that found nothing would prove nothing
    undeclared = {name: where for name, where in found.items() if name not in env.VARIABLES}
    assert not undeclared, undeclared


def test_values_are_checked_against_the_table(tmp_path):
    assert env.problems({}) == []
    assert env.problems({"NEWTUNE_CPU_BF16": "1", "NEWTUNE_CACHE_IDENTITY": " Content ", "NEWTUNE_VERBOSE": "",
                         "NEWTUNE_RUN_ID": "any text", "NEWTUNE_CACHE": str(tmp_path / "new" / "dir")}) == []
    assert env.value("NEWTUNE_CACHE_IDENTITY", {"NEWTUNE_CACHE_IDENTITY": " Content "}) == "content"
    assert env.value("NEWTUNE_CPU_BF16", {"NEWTUNE_CPU_BF16": ""}) is None
    (tmp_path / "f").write_text("x")
    bad = env.problems({"NEWTUNE_CPU_BF16": "maybe", "NEWTUNE_CACHE": str(tmp_path / "f" / "sub")})
    assert len(bad) == 2
    assert bad[0].startswith("NEWTUNE_CPU_BF16='maybe': not one of 0, 1")
    assert bad[1].startswith(f"NEWTUNE_CACHE={str(tmp_path / 'f' / 'sub')!r}: {tmp_path / 'f'} is a file")
    with pytest.raises(NewtuneError, match="2 variables with a bad value"):
        env.check_environment({"NEWTUNE_CPU_BF16": "maybe", "NEWTUNE_VERBOSE": "2"})


def test_a_bad_value_stops_every_command_before_it_starts(tmp_path):
    for argv in (["check", "c.yml"], ["merge-sharded", "out"], ["migrate", "c.yml"]):
        res = subprocess.run([NEWTUNE, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "NEWTUNE_VERBOSE": "on"})
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "NEWTUNE_VERBOSE='on': not one of 0, 1" in res.stderr
