"""`wandb_watch` and `wandb_log_model`, as transformers' WandbCallback does them for axolotl.

axolotl 0.21.0 exports each `wandb_*` key as the environment variable transformers reads (WANDB_WATCH,
WANDB_LOG_MODEL); its callback then
- `wandb_watch: gradients | parameters | all`: `wandb.watch(model, log=..., log_freq=max(100, logging_steps))`
  (histograms every that many backward passes; `false` or anything else: nothing);
- `wandb_log_model: checkpoint`: each saved checkpoint directory as a `model` artifact named `model-<run id>`,
  aliases `epoch_<epoch>` and `checkpoint_global_step_<step>`;
- `wandb_log_model: end`: the final model's files as that artifact, alias `final_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WATCH = ("gradients", "parameters", "all")
NOT_MODEL_FILES = ("metrics.jsonl", "train_summary.json", "loss.png")  # the run's records, not the model


def watch(run: Any, t: Any, model: Any) -> None:
    if t.wandb_watch in WATCH:
        run.watch(model, log=t.wandb_watch, log_freq=max(100, t.logging_steps))


def log_checkpoint(run: Any, t: Any, path: Path, step: int, epoch: float) -> None:
    if t.wandb_log_model != "checkpoint":
        return
    import wandb

    artifact = wandb.Artifact(name=f"model-{run.id}", type="model", metadata={"step": step})
    artifact.add_dir(str(path))
    run.log_artifact(artifact, aliases=[f"epoch_{round(epoch, 2)}", f"checkpoint_global_step_{step}"])


def log_final(run: Any, t: Any, output_dir: Path) -> None:
    if t.wandb_log_model != "end":
        return
    import wandb

    artifact = wandb.Artifact(name=f"model-{run.id}", type="model", metadata={"final_model": True})
    for f in sorted(output_dir.iterdir()):
        if f.is_file() and f.name not in NOT_MODEL_FILES:
            artifact.add_file(str(f), name=f.name)
    run.log_artifact(artifact, aliases=["final_model"])
