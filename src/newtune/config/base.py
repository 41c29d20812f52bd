"""The base for every config model: unknown keys forbidden, frozen after validation, strict scalar types."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator


def _scalar_types(annotation: Any) -> set[Any]:
    """The plain types a field's annotation admits (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return {t for arg in typing.get_args(annotation) for t in _scalar_types(arg)}
    if origin is typing.Annotated:
        return _scalar_types(typing.get_args(annotation)[0])
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    return {annotation}


def bool_admitted(annotation: Any) -> bool:
    """Whether a field of this annotation takes true/false."""
    return bool(_scalar_types(annotation) & {bool, Any})


def _non_empty(v: str) -> str:
    if not v.strip():
        raise ValueError("empty text; give a value or remove the key")
    return v


# Text that must say something: a path, a model name, a token (an empty one would silently mean nothing).
NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]


class Section(BaseModel):
    """A part of the config. `extra="forbid"` turns a typo into an error; `frozen` keeps it read-only.

    A null value means the key's default, for every optional key (axolotl configs write `lora_r:` with
    no value); a required key given as null stays an error.

    Scalars are strict where YAML guesses: a number key refuses true/false (YAML reads `yes`, `on`, `no`
    as booleans), and a float refuses .inf and .nan. Numbers written as text (`1e-4`, which YAML 1.1
    reads as a string) still count as numbers, as in axolotl.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        optional = {f.alias or name for name, f in cls.model_fields.items() if not f.is_required()}
        return {k: v for k, v in data.items() if not (v is None and k in optional)}

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool) and info.field_name in cls.model_fields:
            annotation = cls.model_fields[info.field_name].annotation
            if _scalar_types(annotation) & {int, float} and not bool_admitted(annotation):
                raise ValueError(f"a number is needed, not {str(v).lower()} (YAML reads yes/no/on/off as true/false)")
        return v
