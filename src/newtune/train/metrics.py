"""What a run reports: metrics.jsonl, a rich progress bar, optional trackers, loss.png and a summary.

Only the main process writes. Trackers (TensorBoard, W&B, MLflow) are optional packages: asked for
and missing is a user error, raised by `check_trackers` before any model loads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


def wants_wandb(t: TrainConfig) -> bool:
    return bool(t.wandb_project) and t.wandb_mode != "disabled"


def wants_mlflow(t: TrainConfig) -> bool:
    return bool(t.mlflow_tracking_uri or t.mlflow_experiment_name)


def check_trackers(t: TrainConfig) -> None:
    """Each tracker the config asks for must be installed."""
    needs = [("use_tensorboard", t.use_tensorboard, "tensorboard"), ("wandb_project", wants_wandb(t), "wandb"),
             ("mlflow_tracking_uri", wants_mlflow(t), "mlflow")]
    for key, wanted, package in needs:
        if wanted and importlib.util.find_spec(package) is None:
            raise NewtuneError(key, f"logging to {package} needs the {package} package, which is not installed",
                               f"pip install {package}, or remove {key}")


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def keep_until(output_dir: Path, step: int) -> None:
    """On resume: drop metrics lines logged after `step` (the run continues from there)."""
    kept = [r for r in read_metrics(output_dir) if r.get("step", 0) <= step]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=output_dir)
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, output_dir / METRICS_FILE)


class Metrics:
    """metrics.jsonl lines, the progress bar and the trackers of one run (no-ops off the main process)."""

    def __init__(self, t: TrainConfig, run_config: dict, *, total_steps: int, console: Any, main: bool,
                 resume_step: int = 0) -> None:
        self.t, self.main, self.console, self.total = t, main, console, total_steps
        self.dir = Path(t.output_dir)
        self.trackers: list[Any] = []
        self.progress = self.task = None
        self.last: dict = {}
        if not main:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if resume_step:
            keep_until(self.dir, resume_step)
        else:
            (self.dir / METRICS_FILE).unlink(missing_ok=True)
        self.file = open(self.dir / METRICS_FILE, "a")  # noqa: SIM115 - closed in close()
        self.open_trackers(run_config)
        self.start_progress(resume_step)

    def open_trackers(self, run_config: dict) -> None:
        t = self.t
        if t.use_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.dir / "runs"))
            self.trackers.append(lambda rec, step: [writer.add_scalar(f"train/{k}", v, step) for k, v in numbers(rec)])
            self.closers = [writer.close]
        if wants_wandb(t):
            import wandb

            run = wandb.init(project=t.wandb_project, entity=t.wandb_entity, name=t.wandb_name, mode=t.wandb_mode,
                             id=t.wandb_run_id, resume="allow" if t.wandb_run_id else None, config=run_config,
                             dir=str(self.dir))
            self.trackers.append(lambda rec, step: run.log(dict(numbers(rec)), step=step))
            self.closers = [*getattr(self, "closers", []), run.finish]
        if wants_mlflow(t):
            import mlflow

            if t.mlflow_tracking_uri:
                mlflow.set_tracking_uri(t.mlflow_tracking_uri)
            if t.mlflow_experiment_name:
                mlflow.set_experiment(t.mlflow_experiment_name)
            mlflow.start_run(run_name=t.mlflow_run_name)
            self.trackers.append(lambda rec, step: mlflow.log_metrics(dict(numbers(rec)), step=step))
            self.closers = [*getattr(self, "closers", []), mlflow.end_run]

    def start_progress(self, completed: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[tps]} tok/s"),
            TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=self.total, completed=completed, loss="-", lr="-", tps="-")
        self.progress.start()

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def log(self, record: dict) -> None:
        """One metrics.jsonl line (flushed, so a killed run keeps what it logged), trackers, progress fields."""
        if not self.main:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        for tracker in self.trackers:
            tracker(record, record["step"])
        if "loss" in record and self.progress is not None:
            self.progress.update(self.task, loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                 tps=f"{record['tokens_per_s']:.0f}")
        if "eval_loss" in record:
            self.console.print(f"step {record['step']}: eval_loss {record['eval_loss']:.4f}, "
                               f"perplexity {record['eval_perplexity']:.2f}")
        self.last.update(record)

    def close(self) -> None:
        if not self.main:
            return
        if self.progress is not None:
            self.progress.stop()
        self.file.close()
        for close in getattr(self, "closers", []):
            close()


def numbers(record: dict) -> list[tuple[str, float]]:
    return [(k, float(v)) for k, v in record.items() if k != "step" and isinstance(v, int | float)]


def plot_losses(output_dir: str | Path) -> Path | None:
    """loss.png: training loss and eval loss by step (matplotlib, Agg backend); None without data."""
    records = read_metrics(output_dir)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", linewidth=1)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(output_dir) / PLOT_FILE
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def peak_memory_gb(device_type: str) -> float:
    """Peak accelerator memory allocated, or the process's peak RSS on CPU, in GB."""
    if device_type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 1e9
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # ru_maxrss is in kB on Linux


def print_summary(console: Any, result: Any) -> None:
    """The end-of-run lines: time, tokens, speed, memory, losses and where the outputs are."""
    from rich.markup import escape

    status = "done"
    if result.interrupted:
        status = f"interrupted at step {result.steps}; resume with resume_from_checkpoint: {result.last_checkpoint}"
    rows = [
        ("status", status), ("steps", f"{result.steps}"), ("time", f"{result.seconds:.1f} s"),
        ("tokens", f"{result.tokens:,} ({result.trained_tokens:,} trained)"),
        ("tokens/s", f"{result.tokens_per_s:,.0f}"), ("peak memory", f"{result.peak_memory_gb:.2f} GB"),
    ]
    if result.final_loss is not None:
        rows.append(("final loss", f"{result.final_loss:.4f}"))
    if result.eval_loss is not None:
        rows.append(("eval loss", f"{result.eval_loss:.4f} (perplexity {result.eval_perplexity:.2f})"))
    rows.append(("output", str(result.output_dir)))
    if result.last_checkpoint:
        rows.append(("checkpoint", str(result.last_checkpoint)))
    for k, v in rows:  # plain lines, soft-wrapped: paths are never cut short
        console.print(f"  [bold]{k:<12}[/bold] {escape(v)}", soft_wrap=True, highlight=False)
