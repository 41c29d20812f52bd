"""Several CPU processes (gloo): the launch forms, ddp_* keys, data prepared once.

Every test here starts processes: one xdist group keeps them on one worker, so two never compete
for the two cores at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tolerances import rel_tol

pytestmark = pytest.mark.xdist_group("processes")

BIN = Path(sys.executable).parent
NEWTUNE = str(BIN / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()
# Installed for one test's processes only: tokenization that sleeps, and a log of which rank tokenized.
SLOW_BUILD = '''
import os, time
if os.environ.get("SLOW_BUILD_LOG"):
    import newtune.data.pipeline as pipeline
    real = pipeline.build
    def build(*args, **kwargs):
        with open(os.environ["SLOW_BUILD_LOG"], "a") as f:
            f.write(os.environ.get("RANK", "single") + "\\n")
        time.sleep(float(os.environ["SLOW_BUILD_S"]))
        return real(*args, **kwargs)
    pipeline.build = build
if os.environ.get("KILL_RANK_AT_SAVE") == os.environ.get("RANK"):
    import signal
    import newtune.train.checkpoint as checkpoint
    real_save = checkpoint.save_checkpoint
    def save_checkpoint(output_dir, *args, **kwargs):
        real_write = checkpoint.write_marker
        def die_before_marker(*a, **k):  # every file but the marker is written: then this rank dies
            os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.write_marker = die_before_marker
        return real_save(output_dir, *args, **kwargs)
    checkpoint.save_checkpoint = save_checkpoint
'''


def env(**extra: str) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def write_config(tmp_path: Path, model_dir: Path, **keys) -> Path:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [{"text": f"<|im_start|>user\n{w}<|im_end|>\n", "label": False},
                                                     {"text": f"{w} {w} {w}<|im_end|>", "label": True}]}) + "\n"
                            for w in WORDS))
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "adapter": "lora",
        "lora_target_linear": True, "learning_rate": 0.01, "micro_batch_size": 2, "num_epochs": 2,
        "save_strategy": "no", **keys}))
    return config


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_nproc_equals_one_process_and_slow_tokenization_outlasts_ddp_timeout(tmp_path, tiny_model_dir):
    """`--nproc 2` (no CPU flag set: newtune picks gloo itself) trains as one process accumulating both
    ranks' micro-batches. Rank 0 tokenizes for 2.5 × ddp_timeout while rank 1 waits on the cache lock: the
    run survives, tokenizes once, and only rank 0 logs."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_BUILD)
    log = tmp_path / "built.log"
    config = write_config(tmp_path, tiny_model_dir, ddp_timeout=8)
    slow = env(PYTHONPATH=f"{hooks}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", SLOW_BUILD_LOG=str(log),
               SLOW_BUILD_S="20")
    slow.pop("ACCELERATE_USE_CPU", None)
    two = subprocess.run([NEWTUNE, "train", str(config), "--nproc", "2", "--output_dir", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=600, env=slow)
    assert two.returncode == 0, two.stderr[-3000:]
    assert log.read_text().split() == ["0"]  # tokenized once, by rank 0
    # only rank 0 logs: one start line and one end line of the model load, one final loss
    assert two.stderr.count("loading base model") == 2 and two.stderr.count(": done in ") == 1, two.stderr
    assert (two.stdout + two.stderr).count("final loss") == 1
    one = subprocess.run([NEWTUNE, "train", str(config), "--output_dir", str(tmp_path / "one"),
                          "--gradient_accumulation_steps", "2"], capture_output=True, text=True, timeout=300, env=env())
    assert one.returncode == 0, one.stderr[-3000:]
    two_recs, one_recs = records(tmp_path / "two"), records(tmp_path / "one")
    assert [r["step"] for r in two_recs] == [r["step"] for r in one_recs] == [1, 2, 3, 4]
    assert [r["trained_tokens"] for r in two_recs] == [r["trained_tokens"] for r in one_recs]
    # fp32 sums in another order (two ranks' halves, then an all-reduce): a few ulps of a loss near 10
    # Each rank runs one of the single process's micro-batches (same shapes, same sums); the two gradients
    # are added once either way (a + b == b + a exactly); what differs is the mean of the losses across ranks
    # and DDP's scaling of the bucketed gradients: a few float32 roundings (2**-24 relative) per step, 4 steps.
    assert [r["loss"] for r in two_recs] == pytest.approx([r["loss"] for r in one_recs], rel=4 * 4 * 2**-24)
    assert [r["grad_norm"] for r in two_recs] == pytest.approx([r["grad_norm"] for r in one_recs],
                                                               rel=rel_tol(4 * 64))  # 4 steps' 64-token sums, in DDP's buckets


def test_ddp_keys_reach_torch_and_ddp_timeout_bounds_a_wait(tmp_path):
    worker = Path(__file__).parent / "ddp_options_worker.py"
    res = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(worker), "7", "false", "true", "4", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env())
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, res.stderr[-3000:]
    for line in lines:
        assert line["type"] == "DistributedType.MULTI_CPU"
        assert (line["bucket_bytes"], line["broadcast_buffers"], line["find_unused"]) == (7 * 1024 * 1024, False, True)
    rank0 = next(line for line in lines if line["rank"] == 0)
    # rank 1 arrives 12 s late; with the default 1800 s rank 0 would have waited for it and passed
    assert rank0["barrier"].startswith("failed") and rank0["waited_s"] < 11, rank0


def test_torchrun_and_python_m_run_newtune(tmp_path, tiny_model_dir):
    """`torchrun -m newtune train` (without ACCELERATE_USE_CPU) is a real 2-process run, not two single ones."""
    config = write_config(tmp_path, tiny_model_dir, max_steps=2)
    res = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "newtune", "train", str(config),
                          "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, env=env())
    assert res.returncode == 0, res.stderr[-3000:]
    # 8 rows, micro-batches of 2, 2 ranks: each step trains on 4 rows; one process alone would count 2
    first = records(tmp_path / "out")[0]
    one_rank_rows = 2
    assert first["tokens"] > one_rank_rows * 12 and (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert (res.stdout + res.stderr).count("final loss") == 1


def test_a_killed_rank_stops_the_run_with_one_message_and_no_complete_looking_checkpoint(tmp_path, tiny_model_dir):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_BUILD)
    config = write_config(tmp_path, tiny_model_dir, max_steps=4, save_steps=2, save_strategy=None)
    killing = env(PYTHONPATH=f"{hooks}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", KILL_RANK_AT_SAVE="0")
    res = subprocess.run([NEWTUNE, "train", str(config), "--nproc", "2", "--output_dir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600, env=killing)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "error: train: worker rank 0" in res.stderr and "was killed by SIGKILL" in res.stderr, res.stderr[-3000:]
    assert "Traceback" not in res.stderr.split("error: train:")[-1]
    out = tmp_path / "out"
    assert not (out / "checkpoint-2").exists()  # only a .tmp-checkpoint-2, which is never resumed from
    assert not [p for p in out.glob("*checkpoint-2*") if (p / "newtune_checkpoint.json").exists()]


def test_an_unreachable_rendezvous_is_one_message(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, tiny_model_dir)
    res = subprocess.run([NEWTUNE, "train", str(config), "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint",
                          "nonexistent.invalid:29400", "--rdzv-timeout", "3"],
                         capture_output=True, text=True, timeout=300, env=env())
    assert res.returncode == 1
    assert "error: --rdzv-endpoint: the processes could not meet at nonexistent.invalid:29400" in res.stderr
    assert "Traceback" not in res.stderr and "frame #" not in res.stderr, res.stderr[-3000:]
