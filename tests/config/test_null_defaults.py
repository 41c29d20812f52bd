"""A null value means the key's default, for every optional key; a required key given as null stays an error."""

from __future__ import annotations

import pytest

from newtune.config.load import load_config
from newtune.config.run import SECTIONS
from newtune.errors import ConfigError

DS = [{"path": "data.jsonl", "type": "input_output"}]


def test_axolotl_empty_values_take_the_defaults():
    cfg = load_config(None, raw={"datasets": [{**DS[0], "split": None, "shards": None}], "lora_r": None,
                                 "lora_alpha": None, "lora_target_linear": None, "gradient_checkpointing": None,
                                 "max_grad_norm": None, "bf16": None, "sequence_len": None, "special_tokens": None})
    assert (cfg.adapter.lora_r, cfg.adapter.lora_alpha, cfg.adapter.lora_target_linear) == (8, 16, False)
    assert cfg.train.gradient_checkpointing is False and cfg.train.max_grad_norm == 1.0
    assert cfg.train.bf16 == "auto" and cfg.data.sequence_len == 2048
    assert cfg.data.datasets[0].split == "train"


def test_every_optional_key_accepts_null():
    raw = {"datasets": DS}
    for model in SECTIONS.values():
        for key, field in model.model_fields.items():
            if not field.is_required() and (field.alias or key) != "datasets":
                raw[field.alias or key] = None
    cfg = load_config(None, raw=raw)
    assert cfg.model.base_model is None and cfg.train.learning_rate == 2e-4


def test_a_required_key_given_as_null_is_still_an_error():
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": [{"path": None, "type": "input_output"}]})
    assert e.value.problems[0].startswith("datasets[0].path:")


def test_a_null_unknown_key_is_still_unknown():
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": DS, "lerning_rate": None})
    assert e.value.problems == ["lerning_rate: unknown key. Did you mean 'learning_rate'?"]
