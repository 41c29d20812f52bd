"""The base for every config model: unknown keys forbidden, frozen after validation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A part of the config. `extra="forbid"` turns a typo into an error; `frozen` keeps it read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
