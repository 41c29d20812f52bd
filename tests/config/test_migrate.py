"""Old axolotl keys: moved with one warning naming the replacement, refused where axolotl refuses; `newtune migrate`."""

from __future__ import annotations

import logging

import pytest

from newtune.config.load import load_config
from newtune.config.migrate import migrate_text, migrated
from newtune.errors import ConfigError

DS = [{"path": "data.jsonl", "type": "input_output"}]


def load_warned(raw: dict, caplog) -> tuple:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="newtune.config"):
        cfg = load_config(None, raw=raw)
    return cfg, [r.getMessage() for r in caplog.records if r.name == "newtune.config"]


@pytest.mark.parametrize(("old", "value", "check", "replacement"), [
    ({"flash_attention": True}, None, lambda c: c.model.attn_implementation == "flash_attention_2",
     "attn_implementation: flash_attention_2"),
    ({"sdp_attention": True}, None, lambda c: c.model.attn_implementation == "sdpa", "attn_implementation: sdpa"),
    ({"eager_attention": True}, None, lambda c: c.model.attn_implementation == "eager", "attn_implementation: eager"),
    ({"noisy_embedding_alpha": 5}, None, lambda c: c.train.neftune_noise_alpha == 5, "neftune_noise_alpha"),
    ({"dataset_processes": 3}, None, lambda c: c.data.dataset_num_proc == 3, "dataset_num_proc"),
    ({"evaluation_strategy": "no"}, None, lambda c: c.train.eval_strategy == "no", "eval_strategy"),
])
def test_old_keys_are_moved_with_one_warning_naming_the_replacement(caplog, old, value, check, replacement):
    cfg, warnings = load_warned({"datasets": DS, **old}, caplog)
    assert check(cfg)
    (line,) = warnings
    assert line.startswith(f"config: {next(iter(old))}: deprecated") and replacement in line


def test_legacy_attention_flag_set_false_means_the_default_not_eager(caplog):
    cfg, warnings = load_warned({"datasets": DS, "sdp_attention": False}, caplog)
    assert cfg.model.attn_implementation is None and "attn_implementation chooses the kernel" in warnings[0]


def test_gradient_checkpointing_offload_means_activation_offloading():
    data, changes = migrated({"gradient_checkpointing": "offload"})
    assert data == {"gradient_checkpointing": True, "activation_offloading": True}
    assert "activation_offloading: true" in changes[0].message


def test_dataset_message_fields_move_into_message_property_mappings(caplog):
    ds = [{"path": "d.jsonl", "type": "chat_template", "message_field_role": "from", "message_field_content": "value"}]
    cfg, warnings = load_warned({"datasets": ds}, caplog)
    assert cfg.data.datasets[0].message_property_mappings == {"role": "from", "content": "value"}
    assert "message_field_role" not in cfg.data.datasets[0].options  # moved, not kept beside
    assert len(warnings) == 2 and "datasets[0].message_field_role: deprecated" in warnings[0]
    sharegpt = [{"path": "d.jsonl", "type": "sharegpt", "message_field_role": "from"}]
    assert migrated({"datasets": sharegpt})[1] == []  # sharegpt reads the field itself


@pytest.mark.parametrize(("raw", "message"), [
    ({"max_packed_sequence_len": 2048}, "max_packed_sequence_len: no longer supported; use sample_packing: true"),
    ({"rope_scaling": {"type": "linear", "factor": 2}}, "rope_scaling: no longer supported at the top level; it is a key under model_config"),
    ({"unsloth_lora_mlp": True}, "unsloth_lora_mlp: removed in axolotl; use lora_mlp_kernel: true"),
    ({"flash_attention": True, "attn_implementation": "sdpa"}, "flash_attention: cannot be combined with attn_implementation"),
    ({"noisy_embedding_alpha": 5, "neftune_noise_alpha": 4}, "noisy_embedding_alpha: deprecated, and neftune_noise_alpha is set too"),
    ({"rpo_alpha": 0.5}, "rpo_alpha: no longer supported"),
])
def test_keys_axolotl_refuses_are_refused_with_the_replacement(raw, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": DS, **raw})
    (problem,) = e.value.problems
    assert problem.startswith(message)


def test_empty_removed_keys_ask_for_nothing():
    cfg = load_config(None, raw={"datasets": DS, "max_packed_sequence_len": None, "rope_scaling": None,
                                 "s2_attention": False, "flash_attention": None})
    assert cfg.model.attn_implementation is None


OLD = """\
# an old config
base_model: ./model   # comment kept
flash_attention: true
sdp_attention:
lora_r:
datasets:
  - path: data.jsonl   # data comment kept
    type: chat_template
    message_field_role: from
dataset_processes: 4
rope_scaling:
  type: linear
  factor: 2.0
"""

NEW = """\
# an old config
base_model: ./model   # comment kept
attn_implementation: flash_attention_2
lora_r:
datasets:
  - path: data.jsonl   # data comment kept
    type: chat_template
    message_property_mappings:
      role: from
dataset_num_proc: 4
model_config:
  rope_scaling:
    type: linear
    factor: 2.0
"""


def test_migrate_text_moves_every_old_key_and_keeps_comments_and_order():
    new, changes = migrate_text(OLD, "old.yml")
    assert new == NEW
    assert [c.where for c in changes] == ["dataset_processes", "flash_attention", "sdp_attention", "rope_scaling",
                                          "datasets[0].message_field_role"]
    assert migrate_text(NEW, "new.yml") == (NEW, [])


def test_migrated_text_loads_without_warnings(tmp_path, caplog):
    path = tmp_path / "new.yml"
    path.write_text(NEW.replace("base_model: ./model", "base_model:"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="newtune.config"):
        cfg = load_config(path)
    assert cfg.model.model_config_overrides == {"rope_scaling": {"type": "linear", "factor": 2.0}}
    assert not [r for r in caplog.records if r.name == "newtune.config"]


def test_removed_gptq_keys_left_empty_are_dropped_and_set_ones_refused():
    cfg = load_config(None, raw={"datasets": DS, "gptq_groupsize": None, "gptq_model_v1": None})
    assert cfg.gpu.gptq is None
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": DS, "gptq_groupsize": 128})
    assert e.value.problems[0].startswith("gptq_groupsize: removed from axolotl") and "gptq: true" in e.value.problems[0]
