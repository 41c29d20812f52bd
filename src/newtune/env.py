"""Every environment variable newtune reads, in one table, checked when a command starts.

A variable set to a value newtune does not know is a user error (exit 2) naming it and its values, never
a silent fallback. Code reads them through `value()`; a test greps src/ for every NEWTUNE_* name and
checks that this table declares it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from newtune.errors import NewtuneError


def _cache_dir(text: str) -> str | None:
    path = Path(text).expanduser()
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else f"{part} is a file, not a directory"
    return None


@dataclass(frozen=True)
class EnvVar:
    name: str
    meaning: str
    allowed: tuple[str, ...] = ()  # the values (compared stripped, lower-case); empty: any text
    problem: Callable[[str], str | None] | None = None  # a check of free text: the problem, or None
    shown: str = ""  # the values in words, where `allowed` does not list them


VARIABLES = {v.name: v for v in (
    EnvVar("NEWTUNE_CPU_BF16", "bf16: auto on a CPU: 1 uses bf16, 0 fp32 (instead of measuring this CPU once)",
           allowed=("0", "1")),
    EnvVar("NEWTUNE_CACHE_IDENTITY", "a source file's identity in the cache key: stat (size, mtime, ctime: the "
           "default) or content (sha256 of every source file)", allowed=("stat", "content")),
    EnvVar("NEWTUNE_CACHE", "newtune's cache directory (default $XDG_CACHE_HOME/newtune, else ~/.cache/newtune)",
           problem=_cache_dir, shown="a directory (created if missing)"),
    EnvVar("NEWTUNE_VERBOSE", "1: show the libraries' progress bars and notices (as --verbose)", allowed=("0", "1")),
    EnvVar("NEWTUNE_RUN_ID", "the rendezvous id of a multi-process train run (default: a fresh one per run)"),
)}


def value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value as newtune reads it (stripped; lower-case where the values are a list), or None
    when it is unset or empty."""
    var = VARIABLES[name]  # a KeyError here: a variable read but not declared
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return None
    return raw.lower() if var.allowed else raw


def problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per declared variable set to a value newtune does not accept."""
    out = []
    for name, var in VARIABLES.items():
        got = value(name, environ)
        if got is None:
            continue
        if var.allowed and got not in var.allowed:
            out.append(f"{name}={(os.environ if environ is None else environ)[name]!r}: not one of "
                       f"{', '.join(var.allowed)} ({var.meaning}); set one of them or unset it")
        elif var.problem is not None and (why := var.problem(got)):
            out.append(f"{name}={got!r}: {why}; it must be {var.shown} ({var.meaning})")
    return out


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise one NewtuneError listing every bad NEWTUNE_* value (what each command does first)."""
    found = problems(environ)
    if found:
        n = len(found)
        raise NewtuneError("environment", f"{n} variable{'s' if n > 1 else ''} with a bad value\n  " + "\n  ".join(found))
