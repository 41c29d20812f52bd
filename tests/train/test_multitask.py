"""adapter: multitask_prompt_tuning: each dataset's task_id picks the task prompt its rows train; resume is exact;
a target prompt starts from a trained source prompt."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from tiny_run import losses, tiny_run_fixture, write_rows  # noqa: F401 (the tiny_run fixture)

from newtune.config.load import load_config
from newtune.errors import ConfigError
from newtune.train.loop import run_training

MULTITASK = {"adapter": "multitask_prompt_tuning", "lora_target_linear": False, "peft_num_virtual_tokens": 4,
             "peft_num_tasks": 3, "peft_num_ranks": 2, "learning_rate": 0.05}


def task_datasets(tmp_path, first: int, second: int):
    return [{"path": str(write_rows(tmp_path / "a.jsonl", 4)), "type": "input_output", "task_id": first},
            {"path": str(write_rows(tmp_path / "b.jsonl", 4)), "type": "input_output", "task_id": second}]


def test_rows_train_the_prompt_of_their_task(tiny_run, tmp_path):
    a = run_training(*tiny_run(out="a", num_epochs=2, datasets=task_datasets(tmp_path, 0, 2), **MULTITASK))
    b = run_training(*tiny_run(out="b", num_epochs=2, datasets=task_datasets(tmp_path, 0, 0), **MULTITASK))
    assert losses(a.output_dir)[-1] < losses(a.output_dir)[0]
    wa = load_file(str(a.output_dir / "adapter_model.safetensors"))
    wb = load_file(str(b.output_dir / "adapter_model.safetensors"))
    assert set(wa) == {"prompt_embeddings", "prefix_task_cols", "prefix_task_rows"}
    for key in ("prefix_task_cols", "prefix_task_rows"):
        assert torch.equal(wa[key][1], wb[key][1])  # task 1 has no rows in either run: untouched
        assert not torch.allclose(wa[key][2], wb[key][2])  # task 2 trained on b.jsonl in run a only
        assert not torch.allclose(wa[key][0], wb[key][0])


def test_multitask_resumes_exactly(tiny_run, tmp_path):
    keys = {**MULTITASK, "datasets": task_datasets(tmp_path, 1, 2), "save_strategy": "steps", "save_steps": 2}
    full = run_training(*tiny_run(out="full", **keys))
    resumed = run_training(*tiny_run(out="part", resume_from_checkpoint=str(full.output_dir / "checkpoint-2"), **keys))
    assert resumed.steps == 4
    assert losses(tmp_path / "part") == losses(full.output_dir)[2:]


def test_target_prompt_starts_from_a_trained_source_task(tiny_run, tmp_path):
    from newtune.data.tokenizer import tokenizer_for
    from newtune.model.adapters import apply_adapter
    from newtune.model.load import load_model

    source = run_training(*tiny_run(out="source", datasets=task_datasets(tmp_path, 0, 2), **MULTITASK))
    src = load_file(str(source.output_dir / "adapter_model.safetensors"))
    cfg, _ = tiny_run(out="target", **{**MULTITASK, "peft_num_tasks": 1, "peft_prompt_tuning_init": "exact_source_task",
                                       "peft_prompt_tuning_init_task": 2,
                                       "peft_prompt_tuning_init_dir": str(source.output_dir)})
    tok = tokenizer_for(cfg.model)
    peft = apply_adapter(load_model(cfg.model, tok, dtype=torch.float32), cfg.adapter, tok)
    enc = peft.prompt_encoder["default"]
    assert torch.equal(enc.embedding.weight.detach(), src["prompt_embeddings"])
    assert torch.equal(enc.prefix_task_cols.detach()[0], src["prefix_task_cols"][2])
    assert torch.equal(enc.prefix_task_rows.detach()[0], src["prefix_task_rows"][2])
    with pytest.raises(Exception, match="has 3 tasks; task 5 is not one of them"):
        bad, _ = tiny_run(out="t2", **{**MULTITASK, "peft_num_tasks": 1, "peft_prompt_tuning_init": "exact_source_task",
                                       "peft_prompt_tuning_init_task": 5, "peft_prompt_tuning_init_dir": str(source.output_dir)})
        apply_adapter(load_model(bad.model, tok, dtype=torch.float32), bad.adapter, tok)


@pytest.mark.parametrize(("keys", "message"), [
    ({"adapter": "lora", "lora_target_linear": True, "datasets": [{"path": "d.jsonl", "type": "alpaca", "task_id": 1}]},
     "datasets[0].task_id: task_id goes with adapter: multitask_prompt_tuning"),
    ({**MULTITASK, "datasets": [{"path": "d.jsonl", "type": "alpaca", "task_id": 3}]},
     "datasets[0].task_id: task_id 3 is not below peft_num_tasks (3)"),
    ({**MULTITASK, "peft_prompt_tuning_init": "average_source_tasks", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]},
     "peft_prompt_tuning_init_dir: this peft_prompt_tuning_init reads a trained multitask prompt"),
    ({**MULTITASK, "peft_prompt_tuning_init": "exact_source_task", "peft_prompt_tuning_init_dir": "x",
      "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}, "peft_num_tasks: average_source_tasks and exact_source_task"),
    ({"adapter": "prompt_tuning", "peft_prompt_tuning_init": "only_source_shared", "peft_prompt_tuning_init_dir": "x",
      "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}, "initialise adapter: multitask_prompt_tuning only"),
])
def test_multitask_config_errors(keys, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, raw=keys)
    assert message in e.value.render()
