"""load_config: the config layer's loader, with each dataset's type and format options checked by the
data layer that owns them, all in the one list of problems (what `newtune check` reports)."""

from __future__ import annotations

from pathlib import Path

from newtune.config.load import load_config as load_keys
from newtune.config.run import RunConfig
from newtune.data.options import check_datasets


def load_config(path: str | Path | None, overrides: list[str] | None = None, raw: dict | None = None) -> RunConfig:
    """Read, override and validate a config file; raises ConfigError listing every problem at once."""
    return load_keys(path, overrides, raw, check_datasets=check_datasets)
