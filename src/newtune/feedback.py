"""Feedback for the slow steps (converting a GGUF, loading a model, the first reply): what is happening, then
how long it took.

On a terminal a rich spinner names the step while it runs; in a log file (nohup, Slurm, CI, `> log`) a
plain line says it started. Either way one line says when it ended and how long it took. Only where
newtune's own INFO messages show (rank 0 under torchrun): other ranks stay quiet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("newtune")


def _console() -> Any:
    """The rich console newtune's log handler writes to (cli.setup_logging), or None outside the CLI."""
    for handler in log.handlers:
        console = getattr(handler, "console", None)
        if console is not None:
            return console
    return None


@contextmanager
def step(what: str) -> Iterator[None]:
    """`with step("loading base model x"): ...` → a spinner (terminal) or a start line (log), then
    `loading base model x: done in 3.2 s`; nothing is claimed when the step fails."""
    wait = Waiting(what, announce=True)
    try:
        yield
    finally:
        wait.stop()  # the spinner ends either way
    wait.report("done in ")


class Waiting:
    """A spinner for a wait whose end comes from a callback (the first token of a streamed reply):
    `w = Waiting("..."); ...; w.stop()` at the first output, `w.report()` once the output is complete.
    `announce`: without a terminal, log a start line instead of the spinner."""

    def __init__(self, what: str, announce: bool = False) -> None:
        self.what, self.t0, self.elapsed = what, time.perf_counter(), None
        self.shown = log.isEnabledFor(logging.INFO)
        console = _console()
        self._status = None
        if self.shown and console is not None and console.is_terminal:
            self._status = console.status(f"{what}…")
            self._status.start()
        elif self.shown and announce:
            log.info("%s…", what)

    def stop(self) -> None:
        if self.elapsed is None:
            self.elapsed = time.perf_counter() - self.t0
            if self._status is not None:
                self._status.stop()

    def report(self, prefix: str = "") -> None:
        self.stop()
        if self.shown:
            log.info("%s: %s%.1f s", self.what, prefix, self.elapsed)
