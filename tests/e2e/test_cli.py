"""The `newtune` command: version, help, check, and user errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

NEWTUNE = [str(Path(sys.executable).parent / "newtune")]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(NEWTUNE + list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version_and_help():
    res = run("--version")
    assert res.returncode == 0 and res.stdout.strip().startswith("newtune 0.")
    for cmd in ("train", "preprocess", "inference", "check", "evaluate", "merge-lora"):
        res = run(cmd, "--help")
        assert res.returncode == 0, res.stderr
        assert "CONFIG" in res.stdout


def test_check_prints_resolved_config_with_overrides(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("datasets:\n  - path: d.jsonl\n    type: input_output\nlearning_rate: 0.001\n")
    res = run("check", str(cfg), "--learning_rate", "3e-4", "--set", "micro_batch_size=4")
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    assert resolved["learning_rate"] == 3e-4 and resolved["micro_batch_size"] == 4
    assert resolved["sequence_len"] == 2048 and resolved["datasets"][0]["split"] == "train"


def test_config_errors_exit_2_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text("datasets:\n  - path: d.jsonl\n    type: input_output\n    feild: x\nlerning_rate: 1\nrelora: true\n")
    res = run("check", str(cfg))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert f"{cfg} has 3 problems" in res.stderr
    assert "datasets[0].feild: unknown key. Did you mean 'field'?" in res.stderr
    assert "lerning_rate: unknown key. Did you mean 'learning_rate'?" in res.stderr
    assert "relora: axolotl key not supported by newtune yet" in res.stderr
    res = run("check", str(cfg), "--set", "lerning_rate=2")
    assert res.returncode == 2
    res = run("check", str(tmp_path / "missing.yml"))
    assert res.returncode == 2 and "file not found" in res.stderr and "Traceback" not in res.stderr


def test_merge_lora_on_a_soft_prompt_exits_2(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "adapter_config.json").write_text('{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4}')
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"adapter: prefix_tuning\noutput_dir: {out}\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n")
    res = run("merge-lora", str(cfg))
    assert res.returncode == 2, res.stderr
    assert "a PREFIX_TUNING adapter cannot be merged into the weights; only LoRA can" in res.stderr
    assert "Traceback" not in res.stderr


def test_migrate_prints_a_diff_and_write_rewrites_atomically(tmp_path):
    cfg = tmp_path / "old.yml"
    old = ("# mine\ndatasets:\n  - path: d.jsonl\n    type: input_output\nflash_attention: true  # fast\n"
           "noisy_embedding_alpha: 5\n")
    cfg.write_text(old)
    res = run("migrate", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "-flash_attention: true  # fast\n" in res.stdout and "+attn_implementation: flash_attention_2 # fast\n" in res.stdout
    assert "-noisy_embedding_alpha: 5\n" in res.stdout and "+neftune_noise_alpha: 5\n" in res.stdout
    assert "flash_attention: deprecated; use attn_implementation: flash_attention_2" in res.stderr
    assert cfg.read_text() == old  # printing changes nothing
    res = run("migrate", str(cfg), "--write")
    assert res.returncode == 0, res.stderr
    assert cfg.read_text() == ("# mine\ndatasets:\n  - path: d.jsonl\n    type: input_output\n"
                               "attn_implementation: flash_attention_2 # fast\nneftune_noise_alpha: 5\n")
    assert [p.name for p in tmp_path.iterdir()] == ["old.yml"]  # no temp file left
    res = run("migrate", str(cfg))
    assert res.returncode == 0 and res.stdout == "" and "nothing to migrate" in res.stderr
    res = run("check", str(cfg))
    assert res.returncode == 0 and "deprecated" not in res.stderr


def test_migrate_bad_paths_and_yaml_are_user_errors(tmp_path):
    res = run("migrate", str(tmp_path / "missing.yml"))
    assert res.returncode == 2 and "missing.yml has 1 problem" in res.stderr and "file not found" in res.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1,\n")
    res = run("migrate", str(bad))
    assert res.returncode == 2 and "invalid YAML" in res.stderr and "Traceback" not in res.stderr


def test_check_prints_effective_values_marked_derived(tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"adapter: lora\nlora_target_linear: true\ndatasets:\n  - path: {data}\n    type: chat_template\n")
    res = subprocess.run(NEWTUNE + ["check", str(cfg)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NEWTUNE_CPU_BF16": "0"})
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    assert resolved["base_model"] == "embedded:smollm2-135m-instruct" and resolved["bf16"] is False
    assert resolved["lora_target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    ds = resolved["datasets"][0]
    assert (ds["roles_to_train"], ds["train_on_eos"], ds["train_on_eot"]) == (["assistant"], "turn", "turn")
    lines = res.stdout.splitlines()
    assert "base_model: embedded:smollm2-135m-instruct  # derived: no base_model given: the embedded SmolLM2-135M-Instruct" in lines
    assert "bf16: false  # derived: auto, NEWTUNE_CPU_BF16=0 in the environment" in lines
    assert "  train_on_eos: turn  # derived: axolotl's default" in lines
    assert f"{cfg} is valid" in res.stderr


def test_check_warns_about_a_missing_dataset_file_and_preprocess_names_the_directory(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("datasets:\n  - path: data/later.jsonl\n    type: alpaca\n")
    res = run("check", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (f"warning: datasets[0].path: data/later.jsonl does not exist (relative paths are resolved against the "
            f"working directory, {tmp_path})") in " ".join(res.stderr.split())
    assert "is valid, but 1 dataset file is missing" in res.stderr and "✓" not in res.stderr
    res = run("preprocess", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"error: data/later.jsonl: not found (relative to {tmp_path})" in " ".join(res.stderr.split())


def test_check_warns_about_a_missing_model_path_and_preprocess_stops_on_it(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("base_model: ./models/later\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n")
    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    res = run("check", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "warning: base_model: ./models/later does not exist" in " ".join(res.stderr.split())
    assert "is valid, but 1 model path is missing" in res.stderr
    res = run("preprocess", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"error: base_model: ./models/later not found (relative to {tmp_path})" in " ".join(res.stderr.split())
    assert "model hub" not in res.stderr  # a path is never sent to the hub as a repo id
