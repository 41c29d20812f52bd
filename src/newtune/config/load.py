"""Safe YAML + CLI overrides → RunConfig, or one ConfigError listing every problem.

The YAML is flat like axolotl's; each key goes to the topic section that declares it.
"""

from __future__ import annotations

import difflib
import logging
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from newtune.config import unsupported
from newtune.config.base import bool_admitted
from newtune.config.migrate import migrated
from newtune.config.run import SECTIONS, RunConfig, cross_checks
from newtune.errors import ConfigError

KEY_TO_SECTION = {f.alias or key: name for name, model in SECTIONS.items() for key, f in model.model_fields.items()}
log = logging.getLogger("newtune.config")


DatasetsCheck = Callable[[dict], list[str]]


def load_config(path: str | Path | None, overrides: list[str] | None = None, raw: dict | None = None, *,
                check_datasets: DatasetsCheck | None = None) -> RunConfig:
    """Read, override, route and validate a config. Raises ConfigError with all problems at once.

    The keys of each dataset's format belong to the data layer: `check_datasets(data_section)` returns
    their problems (newtune/load.py passes the data layer's check; without one they are checked on use).
    """
    source = str(path) if path is not None else "config"
    data = dict(raw) if raw is not None else read_yaml(Path(path)) if path is not None else {}
    problems: list[str] = []
    for item in overrides or []:
        problems += apply_override(data, item)
    data, changes = migrated(data)
    for change in changes:
        if change.refused:
            tail = f" (`newtune migrate {source}` rewrites it)" if change.moved and path is not None else ""
            problems.append(change.line() + tail)
            data.pop(change.where, None)  # reported once; a dataset-level key stays where it is declared
        else:
            log.warning("%s: %s", source, change.line())
    sections, routed_problems = route(data)
    problems += routed_problems
    built: dict[str, BaseModel] = {}
    for name, model in SECTIONS.items():
        try:
            built[name] = model.model_validate(sections[name])
        except ValidationError as e:
            problems += [render_error(err, model) for err in drop_union_noise(e.errors(), model)]
    problems += check_datasets(sections["data"]) if check_datasets is not None else []
    if problems:
        raise ConfigError(source, dedupe(problems))
    cfg = RunConfig(**built)
    cross = cross_checks(cfg)
    if cross:
        raise ConfigError(source, [f"{key}: {msg}" for key, msg in cross])
    return cfg


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that notes a key given twice in one mapping (PyYAML silently keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []  # (line, problem)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                self.duplicates.append((line, f"line {line}: {key_node.value} is given twice (lines "
                                              f"{first[key_node.value]} and {line}); YAML would keep only the last: delete one"))
            else:
                first[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> tuple[Any, list[str]]:
    """Safe YAML → (data, the duplicate-key problems in file order)."""
    loader = UniqueKeyLoader(text)
    try:
        data = loader.get_single_data()
        return data, [problem for _, problem in sorted(loader.duplicates)]  # in file order
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [f"file not found (relative paths start at the working directory, {Path.cwd()})"]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), ["is a directory; CONFIG is the YAML file (e.g. config.yml)"]) from None
    except PermissionError:
        raise ConfigError(str(path), ["cannot be read (permission denied)"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    try:
        data, duplicates = parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}invalid YAML: {getattr(e, 'problem', e)}"]) from None
    if duplicates:
        raise ConfigError(str(path), duplicates)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"the top level must be a mapping of keys, not {type(data).__name__}"])
    return data


def apply_override(data: dict, item: str) -> list[str]:
    """Apply one `key=value` override in place; `datasets[0].path=x` and `datasets.0.path=x` both work."""
    if "=" not in item:
        return [f"override '{item}': expected key=value"]
    key, _, text = item.partition("=")
    key = key.strip()  # `--set "lr = 1e-4"`: the spaces around = are not part of the key
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        return [f"override '{item}': the value {text!r} is not valid YAML ({getattr(e, 'problem', e)}); "
                f"quote it to pass it as text, e.g. {key}='\"{text}\"'"]
    parts = key.replace("[", ".").replace("]", "").strip(".").split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return [f"override '{key}': no list item {part}"]
            part = int(part)  # type: ignore[assignment]
        elif not isinstance(node, dict):
            return [f"override '{key}': {'.'.join(parts[:i])} is not a mapping"]
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]
    return []


def takes_bool(key: str) -> bool:
    """Whether a top-level key takes true/false (so a bare `--key` on the command line means true)."""
    section = KEY_TO_SECTION.get(key)
    if section is None:
        return False
    fields = {f.alias or name: f for name, f in SECTIONS[section].model_fields.items()}
    return bool_admitted(fields[key].annotation)


def route(data: dict) -> tuple[dict[str, dict], list[str]]:
    """Send each flat key to its section; unknown and unsupported keys become problems."""
    sections: dict[str, dict] = {name: {} for name in SECTIONS}
    problems: list[str] = []
    for key, value in data.items():
        key = str(key)
        if key in KEY_TO_SECTION:
            sections[KEY_TO_SECTION[key]][key] = value
        elif key in unsupported.TOP_LEVEL:
            if not unsupported.asks_for_nothing(value):
                problems.append(f"{key}: axolotl key not supported by newtune yet; remove it to continue")
        else:
            problems.append(f"{key}: unknown key{did_you_mean(key, KEY_TO_SECTION)}")
    for list_key in ("datasets", "test_datasets"):
        entries = sections["data"].get(list_key)
        if isinstance(entries, list):
            sections["data"][list_key] = [strip_unsupported_dataset_keys(e, f"{list_key}[{i}]", problems)
                                          for i, e in enumerate(entries)]
    return sections, problems


def strip_unsupported_dataset_keys(entry: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(entry, dict):
        return entry
    out = {}
    for k, v in entry.items():
        if k in unsupported.DATASET:
            if not unsupported.asks_for_nothing(v):
                problems.append(f"{where}.{k}: axolotl dataset key not supported by newtune yet; remove it to continue")
        else:
            out[k] = v
    return out


def drop_union_noise(errors: list[dict], model: type[BaseModel]) -> list[dict]:
    """For `str | Mapping` fields, keep the branch that matches the input's shape.

    A mapping given for `type:` fails the `str` branch too; that error only adds noise.
    """
    locs = [clean_loc(e["loc"], model)[0] for e in errors]
    keep = []
    for err, loc in zip(errors, locs, strict=True):
        deeper = any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
        if not (err["type"].endswith("_type") and deeper):
            keep.append(err)
    return keep


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f". Did you mean '{close[0]}'?" if close else ""


def render_error(err: dict, model: type[BaseModel]) -> str:
    """One pydantic error → `datasets[0].feild: unknown key. Did you mean 'field'?`."""
    loc, owner = clean_loc(err["loc"], model)
    path = dotted(loc)
    if err["type"] == "extra_forbidden":
        known = owner.model_fields if owner else {}
        return f"{path}: unknown key{did_you_mean(str(loc[-1]), known)}"
    value = err.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}{shown}"


def clean_loc(loc: tuple, model: type[BaseModel]) -> tuple[tuple, type[BaseModel] | None]:
    """Drop pydantic's union-member tags from a location and find the model owning its last key."""
    out: list = []
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        if current is not None and part in current.model_fields:
            out.append(part)
            nested = models_in(current.model_fields[part].annotation)
            current = nested[0] if nested else None
            continue
        if current is None and out and isinstance(out[-1], str) and not part[:1].isupper() and "[" not in part:
            out.append(part)
            continue
        if part[:1].isupper() or part in ("str", "int", "float", "bool", "list[str]", "dict[str,list[str]]"):
            continue  # a union member's tag, e.g. 'UserDefinedType' or 'str'
        out.append(part)
    return tuple(out), current


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]
    return []


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
