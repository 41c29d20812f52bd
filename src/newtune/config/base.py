"""The base for every config model: unknown keys forbidden, frozen after validation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """A part of the config. `extra="forbid"` turns a typo into an error; `frozen` keeps it read-only.

    A null value means the key's default, for every optional key (axolotl configs write `lora_r:` with
    no value); a required key given as null stays an error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        optional = {f.alias or name for name, f in cls.model_fields.items() if not f.is_required()}
        return {k: v for k, v in data.items() if not (v is None and k in optional)}
