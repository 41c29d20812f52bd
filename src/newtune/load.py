"""load_config: the config layer's loader, with each dataset's type and format options checked by the
data layer that owns them, all in the one list of problems (what `newtune check` reports), and the
directories newtune writes checked against files in the way, the model paths against what is there."""

from __future__ import annotations

from pathlib import Path

from newtune.config.load import load_config as load_keys
from newtune.config.run import RunConfig
from newtune.data.options import check_datasets
from newtune.errors import ConfigError
from newtune.paths import directory_problem, model_source_problem


def load_config(path: str | Path | None, overrides: list[str] | None = None, raw: dict | None = None) -> RunConfig:
    """Read, override and validate a config file; raises ConfigError listing every problem at once."""
    cfg = load_keys(path, overrides, raw, check_datasets=check_datasets)
    written = {"output_dir": cfg.train.output_dir, "dataset_prepared_path": cfg.data.dataset_prepared_path}
    problems = [p for key, value in written.items() if (p := directory_problem(key, value))]
    # base_model_config may name a config.json file itself (AutoConfig reads one): only its existence is checked
    read = {"base_model": cfg.model.base_model, "tokenizer_config": cfg.model.tokenizer_config}
    problems += [p for key, value in read.items() if (p := model_source_problem(key, value))]
    if problems:
        raise ConfigError(str(path) if path is not None else "config", problems)
    return cfg
