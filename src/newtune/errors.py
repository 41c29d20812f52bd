"""User-facing errors: a user's mistake becomes one message and exit code 2, never a traceback."""

from __future__ import annotations


class NewtuneError(Exception):
    """A mistake in the user's config, data or command line.

    `where` names the file, line/row and field; `problem` says what is wrong; `hint` says what to do.
    """

    exit_code = 2

    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where, self.problem, self.hint = where, problem, hint
        super().__init__(self.render())

    def render(self) -> str:
        msg = f"{self.where}: {self.problem}" if self.where else self.problem
        return f"{msg}\n  hint: {self.hint}" if self.hint else msg


class ConfigError(NewtuneError):
    """Every problem found in one config file, reported together."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        n = len(problems)
        head = f"{source} has {n} problem{'s' if n != 1 else ''}"
        super().__init__("", head + "\n" + "\n".join(f"  {p}" for p in problems))


class DataError(NewtuneError):
    """A problem in a dataset row or file."""


class ModelError(NewtuneError):
    """A model or tokenizer that cannot be loaded as configured."""
