"""`newtune train` killed mid-run (SIGKILL) and resumed equals an uninterrupted run; Ctrl-C saves and exits 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

NEWTUNE = str(Path(sys.executable).parent / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()


def write_config(tmp_path: Path, model_dir: Path, out: str, **keys) -> Path:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [
        {"text": f"<|im_start|>user\nSay {w}<|im_end|>\n", "label": False},
        {"text": f"<|im_start|>assistant\n{w} {w}<|im_end|>", "label": True}]}) + "\n" for w in WORDS))
    cfg = {"base_model": str(model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
           "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "adapter": "lora",
           "lora_target_linear": True, "lora_r": 4, "lora_dropout": 0.3, "learning_rate": 0.01,
           "micro_batch_size": 1, "num_epochs": 3, "save_steps": 4, "output_dir": str(tmp_path / out), **keys}
    path = tmp_path / f"{out}.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([NEWTUNE, "train", str(config), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def step_losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r}


def test_sigkill_then_auto_resume_equals_uninterrupted(tmp_path, tiny_model_dir):
    killed_cfg = write_config(tmp_path, tiny_model_dir, "killed")
    whole = start(write_config(tmp_path, tiny_model_dir, "whole"))
    killed = start(killed_cfg)
    wait_for(tmp_path / "killed" / "checkpoint-8" / "newtune_checkpoint.json", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(step_losses(tmp_path / "killed")) < 24  # it really stopped mid-run

    resumed = subprocess.run([NEWTUNE, "train", str(killed_cfg), "--auto_resume_from_checkpoints", "true"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert whole.wait(timeout=300) == 0, whole.stderr.read()[-3000:]
    expected = step_losses(tmp_path / "whole")
    assert sorted(expected) == list(range(1, 25))
    assert step_losses(tmp_path / "killed") == expected


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, tiny_model_dir, "out", save_steps=None, save_strategy="no", num_epochs=20)
    proc = start(config)
    wait_for(tmp_path / "out" / "metrics.jsonl", proc)
    while not (tmp_path / "out" / "metrics.jsonl").read_text():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]  # saved and stopped, but not finished
    assert "Traceback" not in err and "interrupted at step" in out  # the closing summary goes to stdout
    saved = [p for p in (tmp_path / "out").glob("checkpoint-*") if (p / "newtune_checkpoint.json").exists()]
    assert len(saved) == 1
    step = json.loads((saved[0] / "newtune_checkpoint.json").read_text())["step"]
    assert saved[0].name == f"checkpoint-{step}" and 1 <= step < 160
    assert max(step_losses(tmp_path / "out")) == step
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()  # the final model is written only at the end


def test_ctrl_c_under_torchrun_saves_one_checkpoint_from_every_rank(tmp_path, tiny_model_dir):
    """A terminal's Ctrl-C reaches the launcher and both workers (one process group); torchrun also
    forwards it to the workers. The ranks stop after the same step and save one checkpoint together."""
    import os

    config = write_config(tmp_path, tiny_model_dir, "out", save_steps=None, save_strategy="no", num_epochs=40,
                          micro_batch_size=1)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([torchrun, "--nproc_per_node", "2", NEWTUNE, "train", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    wait_for(metrics, proc)
    while not metrics.read_text():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does
    out, err = proc.communicate(timeout=120)
    assert "interrupted at step" in out, err[-3000:]  # the closing summary goes to stdout
    # the only traceback allowed is the launcher's own SignalException on Ctrl-C, never one from newtune
    for tb in err.split("Traceback (most recent call last)")[1:]:
        assert "torch/distributed/run.py" in tb and "newtune" not in tb.split("SignalException")[0], err[-3000:]
    saved = [p for p in (tmp_path / "out").glob("checkpoint-*") if (p / "newtune_checkpoint.json").exists()]
    assert len(saved) == 1, err[-3000:]
    step = json.loads((saved[0] / "newtune_checkpoint.json").read_text())["step"]
    assert saved[0].name == f"checkpoint-{step}" and max(step_losses(tmp_path / "out")) == step
    assert not list((tmp_path / "out").glob(".tmp-*")) and not list((tmp_path / "out").glob("*.partial"))
