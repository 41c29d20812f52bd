"""axolotl's distributed keys → accelerate's arguments, FSDP1 → FSDP2 translation, refusals (no processes)."""

from __future__ import annotations

import pytest

from newtune.config import fsdp1
from newtune.config.distributed import DistributedConfig, FSDPConfig
from newtune.config.load import load_config
from newtune.errors import ConfigError, NewtuneError
from newtune.train import distributed

BASE = {"datasets": [{"path": "x.jsonl", "type": "alpaca"}]}


def test_fsdp_config_keys_map_onto_accelerates_plugin():
    from torch.distributed.fsdp import CPUOffloadPolicy

    plugin = distributed.fsdp_plugin(FSDPConfig(
        reshard_after_forward=False, offload_params=True, cpu_offload_pin_memory=False, cpu_ram_efficient_loading=True,
        auto_wrap_policy="TRANSFORMER_BASED_WRAP", transformer_layer_cls_to_wrap="LlamaDecoderLayer, MistralDecoderLayer",
        state_dict_type="FULL_STATE_DICT", activation_checkpointing=True))
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is False
    assert isinstance(plugin.cpu_offload, CPUOffloadPolicy) and plugin.cpu_offload.pin_memory is False
    assert plugin.cpu_ram_efficient_loading is True and plugin.activation_checkpointing is True
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer", "MistralDecoderLayer"]
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    default = distributed.fsdp_plugin(FSDPConfig())
    assert default.reshard_after_forward is True and default.state_dict_type.name == "SHARDED_STATE_DICT"


def test_fsdp1_config_is_translated_with_a_warning_per_key(caplog):
    raw = {**BASE, "fsdp": ["full_shard", "auto_wrap", "offload"], "fsdp_final_state_dict_type": "FULL_STATE_DICT",
           "fsdp_config": {"fsdp_version": 1, "fsdp_sharding_strategy": "SHARD_GRAD_OP", "fsdp_sync_module_states": True,
                           "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer", "fsdp_use_orig_params": False}}
    with caplog.at_level("WARNING", logger="newtune.config"):
        cfg = load_config(None, raw=raw)
    f = cfg.distributed.fsdp_config
    assert (f.fsdp_version, f.reshard_after_forward, f.offload_params, f.auto_wrap_policy) == (
        2, False, True, "TRANSFORMER_BASED_WRAP")  # sharding_strategy SHARD_GRAD_OP wins over the list's full_shard
    assert f.transformer_layer_cls_to_wrap == "LlamaDecoderLayer" and f.final_state_dict_type == "FULL_STATE_DICT"
    text = caplog.text
    for named in ("fsdp: [offload] → fsdp_config.offload_params: True", "fsdp_version: 1 → 2",
                  "sharding_strategy: SHARD_GRAD_OP → reshard_after_forward: False", "fsdp_config.sync_module_states dropped",
                  "fsdp_config.use_orig_params dropped"):
        assert named in text, named


def test_fsdp2_config_passes_untranslated():
    raw = {**BASE, "fsdp_version": 2, "fsdp_config": {"reshard_after_forward": True, "offload_params": False}}
    out, warnings, problems = fsdp1.translate(raw)
    assert warnings == [] and problems == [] and out["fsdp_config"]["reshard_after_forward"] is True
    assert fsdp1.translate(BASE) == (BASE, [], [])


@pytest.mark.parametrize(("strategy", "says"), [("NO_SHARD", "plain DDP"), ("HYBRID_SHARD", "dp_replicate_size")])
def test_fsdp1_strategies_without_a_translation_are_refused(strategy, says):
    with pytest.raises(ConfigError, match=says):
        load_config(None, raw={**BASE, "fsdp_config": {"fsdp_sharding_strategy": strategy}})


def test_deepspeed_and_fsdp_together_is_one_clear_error():
    with pytest.raises(ConfigError, match="choose deepspeed or fsdp_config, not both"):
        load_config(None, raw={**BASE, "deepspeed": "deepspeed_configs/zero2.json", "fsdp_config": {"fsdp_version": 2}})


@pytest.mark.parametrize(("keys", "world", "says"), [
    ({"dp_shard_size": 4, "fsdp_config": FSDPConfig()}, 2, "dp_shard_size 4 = 4 processes, but this run has 2"),
    ({"dp_shard_size": 2}, 2, "needs fsdp_config"),
    ({"tensor_parallel_size": 3}, 2, "tensor_parallel_size 3 = 3 processes"),
    ({"tensor_parallel_size": 2}, 2, "tensor parallelism is not supported"),
    ({"context_parallel_size": 2}, 2, "context parallelism is not supported"),
    ({"dp_replicate_size": 2, "dp_shard_size": 1, "fsdp_config": FSDPConfig()}, 2, "HSDP"),
])
def test_parallel_sizes_that_cannot_run_are_refused_with_the_reason(keys, world, says):
    with pytest.raises(NewtuneError, match=says):
        distributed.check_world(DistributedConfig(**keys), world=world)


def test_sizes_that_fit_pass():
    distributed.check_world(DistributedConfig(dp_shard_size=2, fsdp_config=FSDPConfig()), world=2)
    distributed.check_world(DistributedConfig(), world=4)


@pytest.mark.parametrize("name", ["zero1", "zero2", "zero3", "zero3_bf16_cpuoffload_all"])
def test_shipped_deepspeed_configs_resolve_by_axolotls_names_without_the_file(name, tmp_path, monkeypatch):
    from newtune.train.deepspeed import load_deepspeed_config, zero_stage

    monkeypatch.chdir(tmp_path)  # no deepspeed_configs/ here
    cfg = load_deepspeed_config(f"deepspeed_configs/{name}.json", micro_batch_size=2, accumulation=4, world=8,
                                max_grad_norm=1.0, bf16=True, fp16=False)
    assert zero_stage(cfg) == int(name[4])
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"]) == (2, 4, 64)
    assert cfg["bf16"]["enabled"] is True and cfg["gradient_clipping"] == 1.0
    if name.endswith("cpuoffload_all"):
        assert cfg["zero_optimization"]["offload_param"]["device"] == "cpu"


def test_a_deepspeed_config_that_is_not_there_names_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NewtuneError, match="deepspeed_configs/zero3.json"):
        distributed.deepspeed_plugin("deepspeed_configs/zero4.json", cpu=True)


def test_deepspeed_without_the_package_is_one_clear_error():
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed here")
    with pytest.raises(NewtuneError, match="missing deepspeed package"):
        distributed.deepspeed_plugin("deepspeed_configs/zero2.json", cpu=True)


def test_newtune_migrate_writes_the_fsdp2_form():
    from newtune.config.migrate import migrate_text

    text = ("fsdp:\n  - full_shard\n  - auto_wrap\nfsdp_config:\n  fsdp_version: 1\n"
            "  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n  fsdp_sync_module_states: true\n")
    new, changes = migrate_text(text, "c.yml")
    assert new == ("fsdp_config:\n  fsdp_version: 2\n  transformer_layer_cls_to_wrap: LlamaDecoderLayer\n"
                   "  reshard_after_forward: true\n  auto_wrap_policy: TRANSFORMER_BASED_WRAP\n")
    assert any("fsdp_version: 1 → 2" in c.message for c in changes)
