"""Config loading: strict keys, did-you-mean, unsupported keys, overrides, all problems at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from newtune.config.load import KEY_TO_SECTION
from newtune.config.run import SECTIONS
from newtune.errors import ConfigError
from newtune.load import load_config

DS = [{"path": "data.jsonl", "type": "input_output"}]


def problems(raw: dict, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides, raw=raw)
    return e.value.problems


def test_unknown_top_level_key_names_it_and_suggests():
    assert problems({"datasets": DS, "lerning_rate": 1e-4}) == ["lerning_rate: unknown key. Did you mean 'learning_rate'?"]


def test_unknown_dataset_key_has_dotted_path_and_suggestion():
    raw = {"datasets": [{"path": "a", "type": "input_output", "feild_instruction": "q"}]}
    assert problems(raw) == ["datasets[0].feild_instruction: unknown key. Did you mean 'field_instruction'?"]


def test_unknown_key_inside_user_defined_type():
    raw = {"datasets": [{"path": "a", "type": {"field_instructio": "q"}}]}
    assert problems(raw) == ["datasets[0].type.field_instructio: unknown key. Did you mean 'field_instruction'?"]


def test_known_axolotl_key_not_supported_is_refused():
    assert problems({"datasets": DS, "relora": True}) == [
        "relora: axolotl key not supported by newtune yet; remove it to continue"
    ]
    assert problems({"datasets": [{"path": "a", "type": "input_output", "preprocess_shards": 2}]}) == [
        "datasets[0].preprocess_shards: axolotl dataset key not supported by newtune yet; remove it to continue"
    ]


def test_unsupported_key_with_empty_value_asks_for_nothing():
    cfg = load_config(None, raw={"datasets": DS, "deepspeed": None, "xformers_attention": False, "fsdp": []})
    assert cfg.data.datasets[0].path == "data.jsonl"


def test_wrong_types_and_ranges_each_get_one_message():
    got = problems({"datasets": DS, "micro_batch_size": 0, "learning_rate": "fast", "lora_r": 0})
    assert "micro_batch_size: Input should be greater than or equal to 1 (got 0)" in got
    assert any(p.startswith("learning_rate: Input should be a valid number") for p in got)
    assert "lora_r: Input should be greater than or equal to 1 (got 0)" in got
    assert len(got) == 3


def test_all_problems_of_a_file_reported_at_once(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text("lerning_rate: 1\nrelora: true\nmicro_batch_size: -1\ndatasets:\n  - path: a\n    type: alpacca\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert len(e.value.problems) == 4
    assert str(f) in e.value.render() and "has 4 problems" in e.value.render()


def test_unknown_dataset_type_is_an_error():
    got = problems({"datasets": [{"path": "a", "type": "input_outptu"}]})
    assert got == ["datasets[0].type: unknown dataset type 'input_outptu'. Did you mean 'input_output'?"]


def test_impossible_combinations():
    got = problems({"datasets": DS, "adapter": "lora", "warmup_steps": 5, "warmup_ratio": 0.1})
    assert "warmup_ratio: set warmup_steps or warmup_ratio, not both" in got
    assert "lora_target_modules: LoRA needs lora_target_modules, lora_target_parameters or lora_target_linear: true" in got
    assert problems({}) == ["datasets: no datasets given; add at least one under datasets:"]
    assert problems({"datasets": DS, "adapter": "qlora", "lora_target_linear": True}) == [
        "load_in_4bit: adapter: qlora needs load_in_4bit: true"
    ]


def test_yaml_errors_name_the_line(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text("datasets:\n  - path: a\n   type: x\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "line 3" in e.value.render()
    f.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f)


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text("datasets: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(f)


def test_overrides_are_validated_like_the_file():
    cfg = load_config(None, ["learning_rate=1e-4", "datasets[0].split=test", "datasets.0.path=b"], raw={"datasets": DS})
    assert cfg.train.learning_rate == 1e-4
    assert cfg.data.datasets[0].split == "test" and cfg.data.datasets[0].path == "b"
    assert problems({"datasets": DS}, ["lerning_rate=1"]) == ["lerning_rate: unknown key. Did you mean 'learning_rate'?"]


def test_config_is_frozen_and_defaults_are_filled():
    cfg = load_config(None, raw={"datasets": DS})
    with pytest.raises(ValidationError):
        cfg.train.learning_rate = 1.0  # type: ignore[misc]
    assert cfg.model.trust_remote_code is False
    flat = cfg.flat()
    assert flat["sequence_len"] == 2048 and flat["optimizer"] == "adamw_torch" and flat["base_model"] is None


def test_no_key_is_declared_in_two_sections():
    seen: dict[str, str] = {}
    for name, model in SECTIONS.items():
        for field_name, field in model.model_fields.items():
            key = field.alias or field_name  # the YAML key (model_config is pydantic's own name, so an alias)
            assert key not in seen, f"{key} declared in {seen.get(key)} and {name}"
            seen[key] = name
    assert seen == KEY_TO_SECTION


def test_config_and_data_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; import newtune.config.load, newtune.data.encode, newtune.data.formats; "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_more_impossible_combinations_each_named():
    assert problems({"datasets": DS, "adapter": "prompt_tuning", "sample_packing": True}) == [
        "sample_packing: soft prompts prepend virtual tokens to each row; they cannot be packed"]
    assert problems({"pretraining_dataset": [{"path": "c.jsonl"}]}) == [
        "max_steps: pretraining_dataset streams without an end, so max_steps is required"]
    assert problems({"datasets": DS, "load_in_4bit": True, "load_in_8bit": True, "adapter": "qlora",
                     "lora_target_linear": True}) == ["load_in_8bit: choose load_in_4bit or load_in_8bit, not both"]
    assert problems({"datasets": DS, "val_set_size": 0.1, "test_datasets": DS, "save_steps": 5,
                     "saves_per_epoch": 2}) == ["val_set_size: use either val_set_size or test_datasets, not both",
                                                "saves_per_epoch: set save_steps or saves_per_epoch, not both"]


CCE = "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"


def test_axolotl_lora_example_keys_are_understood():
    """What axolotl's LoRA examples add around the basics: its loss plugin, LoRA kernels, checkpointing kwargs."""
    raw = {"datasets": DS, "adapter": "lora", "lora_target_linear": True, "plugins": [CCE],
           "cut_cross_entropy": True, "lora_mlp_kernel": True, "lora_qkv_kernel": True, "lora_o_kernel": False,
           "gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": True}}
    cfg = load_config(None, raw=raw)
    assert cfg.train.plugins == [CCE] and cfg.train.gradient_checkpointing_kwargs.use_reentrant is True
    assert (cfg.adapter.lora_mlp_kernel, cfg.adapter.lora_o_kernel) == (True, False)


def test_plugins_newtune_does_not_build_in_are_refused():
    (msg,) = problems({"datasets": DS, "plugins": [CCE, "axolotl.integrations.kd.KDPlugin"]})
    assert msg.startswith("plugins: newtune has no plugin system") and CCE in msg
    liger = load_config(None, raw={"datasets": DS, "plugins": ["axolotl.integrations.liger.LigerPlugin"],
                                   "liger_rms_norm": True})
    assert liger.gpu.liger_rms_norm is True  # the same math on newtune's paths (tests/config/test_gpu_keys.py)


def test_lora_kernel_switches_and_checkpointing_kwargs_are_checked():
    (dora,) = problems({"datasets": DS, "adapter": "lora", "lora_target_linear": True, "peft_use_dora": True,
                        "lora_qkv_kernel": True})
    assert dora.startswith("lora_qkv_kernel: fused LoRA layers do not apply to DoRA")
    (typo,) = problems({"datasets": DS, "gradient_checkpointing_kwargs": {"use_reentrnt": False}})
    assert typo.startswith("gradient_checkpointing_kwargs.use_reentrnt: unknown key")


def test_schedule_keys_axolotl_would_ignore_are_refused():
    (msg,) = problems({"datasets": DS, "cosine_constant_lr_ratio": 0.5})
    assert msg.startswith("cosine_constant_lr_ratio: cosine_constant_lr_ratio goes with lr_scheduler: cosine")
    (msg,) = problems({"datasets": DS, "lr_quadratic_warmup": True, "lr_scheduler": "linear"})
    assert msg.startswith("lr_quadratic_warmup: lr_quadratic_warmup goes with lr_scheduler: cosine")
