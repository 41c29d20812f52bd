"""What every checkpoint carries besides weights: the resolved config, the tokenizer with the chat
template used in training, and prompt_format.json saying how to build a prompt at inference.

prompt_format.json, one of three kinds:
  {"kind": "chat", "type": "chat_template", "system": null, "stop": ["<|im_end|>"]}
                                                       the chat template is saved in the tokenizer
  {"kind": "instruct", "type": "alpaca", "prompt_field": "instruction", "dataset": {...}}
                                                       the format renders a row holding only the prompt
  {"kind": "raw", "type": "completion"}                the prompt text is used as is
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from newtune.config.data import DataConfig, DatasetConfig
from newtune.config.run import RunConfig
from newtune.data.types import Tokenizer

CONFIG_FILE = "newtune.yml"
PROMPT_FORMAT_FILE = "prompt_format.json"


def save_artifacts(out_dir: str | Path, cfg: RunConfig, tokenizer: Tokenizer) -> dict:
    """Write newtune.yml, the tokenizer (with the training chat template) and prompt_format.json."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fmt = describe_prompt_format(cfg.data, tokenizer)
    live = tokenizer.chat_template
    if fmt["kind"] == "chat":  # saved with the template training used; the run's tokenizer keeps its own
        tokenizer.chat_template = fmt.pop("template")
    try:
        tokenizer.save_pretrained(out)
    finally:
        tokenizer.chat_template = live
    write_atomic(out / CONFIG_FILE, yaml.safe_dump(cfg.flat(), sort_keys=False, allow_unicode=True))
    write_atomic(out / PROMPT_FORMAT_FILE, json.dumps(fmt, indent=2, ensure_ascii=False) + "\n")
    return fmt


def read_prompt_format(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / PROMPT_FORMAT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def describe_prompt_format(data: DataConfig, tokenizer: Tokenizer) -> dict:
    """How the first training dataset turns a user's prompt into model input (see module doc)."""
    if not data.datasets or data.datasets[0].type is None:
        return {"kind": "raw", "type": None}
    if data.rl:
        return describe_pair_format(data.datasets[0])
    from newtune.data.options import format_of, options_of

    ds = data.datasets[0]
    fmt = format_of(ds)
    if fmt.kind == "conversation":
        template, eot = training_chat_template(data, ds, tokenizer)
        return {"kind": "chat", "type": ds.type_name, "system": data.default_system_message, "stop": eot,
                "template": template}
    if fmt.kind == "segments":
        field = fmt.prompt_field_for(options_of(ds))  # declared by the format, never guessed
        if field is not None:
            dataset = ds.model_dump(mode="json", exclude_defaults=True)
            return {"kind": "instruct", "type": ds.type_name, "prompt_field": field, "dataset": dataset}
    return {"kind": "raw", "type": ds.type_name}


def describe_pair_format(ds: DatasetConfig) -> dict:
    """Preference types that build their prompt from the user's text ("pair" kind); others use it raw."""
    from newtune.data.formats.preference import PREFERENCE_FORMATS

    if PREFERENCE_FORMATS[ds.type_name].prompt is None:
        return {"kind": "raw", "type": ds.type_name}
    return {"kind": "pair", "type": ds.type_name, "dataset": ds.model_dump(mode="json", exclude_defaults=True)}


def training_chat_template(data: DataConfig, ds: DatasetConfig, tokenizer: Tokenizer) -> tuple[str, list[str]]:
    """The Jinja template training rendered conversations with, and its end-of-turn tokens."""
    from newtune.data.chat import chat_setup

    setup = chat_setup(ds, data, tokenizer)
    return setup.template.source, list(setup.rules.eot_tokens or [])


def trained_tokenizer(trained: Path, cfg: RunConfig) -> Tokenizer:
    """The tokenizer saved beside the trained weights (with the tokens and template training used), else the
    base model's."""
    if (trained / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(trained)
    from newtune.model.load import load_tokenizer_for

    return load_tokenizer_for(cfg.model)
