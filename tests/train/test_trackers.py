"""TensorBoard, W&B (offline) and MLflow (local store) receive the losses metrics.jsonl holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_run import tiny_run_fixture  # noqa: F401  (the tiny_run fixture)

from newtune.errors import NewtuneError
from newtune.train.loop import run_training


@pytest.fixture(autouse=True)
def _quiet_local_trackers(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow's local file store, for the test only


def jsonl_losses(out: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_every_tracker_gets_the_logged_losses(tiny_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mlruns = tmp_path / "mlruns"
    cfg, console = tiny_run(max_steps=3, logging_steps=1, use_tensorboard=True, wandb_project="newtune-test",
                            wandb_mode="offline", mlflow_tracking_uri=f"file:{mlruns}", mlflow_experiment_name="e")
    result = run_training(cfg, console)
    expected = jsonl_losses(result.output_dir)
    assert [s for s, _ in expected] == [1, 2, 3]

    events = EventAccumulator(str(result.output_dir / "runs"))
    events.Reload()
    steps, values = zip(*expected, strict=True)
    scalars = events.Scalars("train/loss")
    # TensorBoard keeps float32: one rounding (2**-24 relative) of each float64 loss, within approx's 1e-6.
    assert tuple(e.step for e in scalars) == steps and [e.value for e in scalars] == pytest.approx(values)

    (loss_file,) = mlruns.glob("*/*/metrics/loss")
    logged = [line.split() for line in loss_file.read_text().splitlines()]  # "timestamp value step"
    assert tuple(int(step) for *_, step in logged) == steps
    assert [float(value) for _, value, _ in logged] == pytest.approx(values)  # MLflow's text: a decimal rounding
    params = {p.name: p.read_text() for p in loss_file.parents[1].glob("params/*")}
    assert params["sequence_len"] == "64" and params["adapter"] == "lora"

    (wandb_file,) = (result.output_dir / "wandb").glob("offline-run-*/run-*.wandb")
    history = wandb_file.read_bytes()  # protobuf records: keys and JSON-encoded values appear as text
    assert b"train/loss" in history
    assert all(json.dumps(loss).encode() in history for _, loss in expected)


def test_a_tracker_that_cannot_start_names_its_key(tiny_run, tmp_path):
    cfg, console = tiny_run(use_tensorboard=True, mlflow_tracking_uri="nosuchscheme://nowhere")
    with pytest.raises(NewtuneError, match="mlflow could not start") as e:
        run_training(cfg, console)
    assert e.value.where == "mlflow_tracking_uri"


def test_a_tracker_failing_mid_run_does_not_stop_training(tiny_run, tmp_path, monkeypatch, caplog):
    from mlflow import MlflowClient

    real = MlflowClient.log_batch

    def down(self, run_id, metrics=(), **kw):
        if metrics:
            raise ConnectionError("tracking server unreachable")
        return real(self, run_id, metrics=metrics, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", down)
    cfg, console = tiny_run(max_steps=3, logging_steps=1, mlflow_tracking_uri=f"file:{tmp_path / 'mlruns'}")
    result = run_training(cfg, console)
    assert result.steps == 3 and len(jsonl_losses(result.output_dir)) == 3
    assert "stopped logging to mlflow: tracking server unreachable" in caplog.text


@pytest.mark.parametrize("log_model", ["checkpoint", "end"])
def test_wandb_watch_and_log_model_are_honoured(tiny_run, monkeypatch, log_model):
    import wandb.sdk.wandb_run

    watched = []
    real_watch = wandb.sdk.wandb_run.Run.watch
    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "watch",
                        lambda self, model, **kw: watched.append((model, kw)) or real_watch(self, model, **kw))
    logged = []
    real_log = wandb.sdk.wandb_run.Run.log_artifact
    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log_artifact",
                        lambda self, artifact, **kw: logged.append((artifact, kw)) or real_log(self, artifact, **kw))
    cfg, console = tiny_run(out=log_model, max_steps=2, save_strategy="steps", save_steps=1, wandb_project="newtune-test",
                            wandb_mode="offline", wandb_watch="all", wandb_log_model=log_model)
    result = run_training(cfg, console)
    # transformers' WandbCallback, which axolotl drives through WANDB_WATCH / WANDB_LOG_MODEL
    assert [kw for _, kw in watched] == [{"log": "all", "log_freq": 100}]
    assert watched[0][0] is result.model
    names = [(a.name.split(":")[0], a.type, kw["aliases"]) for a, kw in logged]
    (run_dir,) = (result.output_dir / "wandb").glob("offline-run-*")
    run_id = run_dir.name.rsplit("-", 1)[1]
    if log_model == "checkpoint":  # checkpoint-1; the last step saves the final model, not a checkpoint
        assert names == [(f"model-{run_id}", "model", ["epoch_0.25", "checkpoint_global_step_1"])]
        assert "adapter_model.safetensors" in logged[0][0].manifest.entries
    else:
        assert names == [(f"model-{run_id}", "model", ["final_model"])]
        files = set(logged[0][0].manifest.entries)
        assert {"adapter_model.safetensors", "adapter_config.json", "newtune.yml"} <= files
        assert not files & {"metrics.jsonl", "loss.png"}
    assert f"model-{run_id}".encode() in next(run_dir.glob("run-*.wandb")).read_bytes()  # in the offline run's records
