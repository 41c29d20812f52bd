"""Slow steps say what is happening and how long it took: a spinner on a terminal, plain lines in a log."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.logging import RichHandler

from newtune import feedback


@pytest.fixture
def newtune_log():
    """newtune's logger writing through rich to a captured console, as cli.setup_logging sets it up."""
    logger = logging.getLogger("newtune")
    saved = logger.handlers[:], logger.level, logger.propagate
    buf = io.StringIO()

    def attach(terminal: bool) -> io.StringIO:
        console = Console(file=buf, force_terminal=terminal, width=200, color_system=None)
        logger.handlers = [RichHandler(console=console, show_time=False, show_path=False, markup=False)]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        return buf

    yield attach
    logger.handlers, logger.level, logger.propagate = saved


def test_a_step_in_a_log_file_says_it_started_and_how_long_it_took(newtune_log):
    buf = newtune_log(terminal=False)
    with feedback.step("loading base model m"):
        logging.getLogger("newtune.model").info("inside")
    lines = [line.strip() for line in buf.getvalue().splitlines() if line.strip()]
    assert lines[0].endswith("loading base model m…") and lines[1].endswith("inside")
    assert "loading base model m: done in " in lines[2] and lines[2].endswith(" s")


def test_a_step_on_a_terminal_spins_and_then_says_how_long_it_took(newtune_log):
    buf = newtune_log(terminal=True)
    with feedback.step("converting x"):
        pass
    text = buf.getvalue()
    assert "converting x: done in " in text
    assert "converting x…" in text  # the spinner's line (rich's live status, erased when it ends)


def test_a_failed_step_does_not_claim_it_finished(newtune_log):
    buf = newtune_log(terminal=False)
    with pytest.raises(OSError), feedback.step("loading base model m"):
        raise OSError("broken")
    assert "done in" not in buf.getvalue()


def test_quiet_ranks_show_nothing(newtune_log):
    buf = newtune_log(terminal=False)
    logging.getLogger("newtune").setLevel(logging.WARNING)  # what setup_logging does on ranks other than 0
    with feedback.step("loading base model m"):
        pass
    w = feedback.Waiting("first reply")
    w.report()
    assert buf.getvalue() == ""


def test_waiting_measures_until_the_first_output(newtune_log):
    buf = newtune_log(terminal=False)
    w = feedback.Waiting("first reply: time to its first text")
    w.stop()
    first = w.elapsed
    w.stop()  # later output does not move the measurement
    w.report()
    assert w.elapsed == first and "first reply: time to its first text: " in buf.getvalue()


def test_a_failed_step_on_a_terminal_ends_its_spinner(newtune_log):
    buf = newtune_log(terminal=True)
    with pytest.raises(OSError), feedback.step("loading base model m"):
        raise OSError("broken")
    with feedback.step("loading it again"):  # rich refuses a second live display while one is still running
        pass
    assert "loading base model m: done" not in buf.getvalue() and "loading it again: done in " in buf.getvalue()
