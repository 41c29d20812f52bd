"""What a run reports: metrics.jsonl, a rich progress bar, optional trackers, loss.png and a summary.

Only the main process writes. Trackers (TensorBoard, W&B, MLflow) are optional packages: asked for
and missing is a user error, raised by `check_trackers` before any model loads.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("newtune.train")

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

    def __init__(self, t: TrainConfig, run_config: dict, *, total_steps: int, console: Console, main: bool,
                 resume_step: int = 0) -> None:
        self.t, self.main, self.console, self.total = t, main, console, total_steps
        self.dir = Path(t.output_dir)
        self.trackers: list[Any] = []
        self.wandb_run: Any = None
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
        """Start each tracker the config asks for; one that cannot start is a user error naming its key."""
        t = self.t
        self.closers: list[tuple[str, Any]] = []
        wanted = [("use_tensorboard", "tensorboard", t.use_tensorboard, self._tensorboard),
                  ("wandb_project", "wandb", wants_wandb(t), self._wandb),
                  ("mlflow_tracking_uri", "mlflow", wants_mlflow(t), self._mlflow)]
        for key, name, on, start in wanted:
            if not on:
                continue
            try:
                write, close = start(run_config)
            except Exception as e:  # a bad URI, a refused login, a store the package will not open ...
                self.close_trackers()
                raise NewtuneError(key, f"{name} could not start: {first_lines(e)}",
                                   f"fix {key} and the related settings, or remove {key}") from None
            self.trackers.append((name, write))
            self.closers.append((name, close))

    def _tensorboard(self, _run_config: dict) -> tuple[Any, Any]:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.dir / "runs"))

        def write(record: dict, step: int) -> None:
            for k, v in numbers(record):
                writer.add_scalar(grouped(k), v, step)
            writer.flush()

        return write, writer.close

    def _wandb(self, run_config: dict) -> tuple[Any, Any]:
        import wandb

        t = self.t
        run = wandb.init(project=t.wandb_project, entity=t.wandb_entity, name=t.wandb_name, mode=t.wandb_mode,
                         id=t.wandb_run_id, resume="allow" if t.wandb_run_id else None, config=run_config,
                         dir=str(self.dir))
        self.wandb_run = run  # wandb_watch and wandb_log_model use it (train/wandb_model.py)
        return (lambda rec, step: run.log({grouped(k): v for k, v in numbers(rec)}, step=step)), run.finish

    def _mlflow(self, run_config: dict) -> tuple[Any, Any]:
        """MlflowClient rather than mlflow's module-level API: no active run or experiment left in the
        process for a later run (tests, notebooks) to inherit."""
        import time

        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param

        t = self.t
        client = MlflowClient(tracking_uri=t.mlflow_tracking_uri)  # None: MLFLOW_TRACKING_URI or ./mlruns
        name = t.mlflow_experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        experiment = "0"  # mlflow's Default experiment
        if name:
            found = client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else client.create_experiment(name)
        run_id = client.create_run(experiment, run_name=t.mlflow_run_name).info.run_id
        params = [Param(k, str(v)[:500]) for k, v in run_config.items() if v is not None and not isinstance(v, list | dict)]
        for i in range(0, len(params), 100):  # mlflow takes at most 100 params per batch
            client.log_batch(run_id, params=params[i : i + 100])

        def write(record: dict, step: int) -> None:
            now = int(time.time() * 1000)
            # A file store keeps each metric as a file: `tokens` and `tokens/total` cannot both be, so `/` becomes `_`.
            client.log_batch(run_id, metrics=[Metric(k.replace("/", "_"), v, now, step) for k, v in numbers(record)])

        return write, lambda: client.set_terminated(run_id)

    def wandb(self, call: str, *args: Any) -> None:
        """wandb_watch / wandb_log_model (train/wandb_model.py: watch, log_checkpoint, log_final) on the W&B run."""
        if self.wandb_run is not None:
            from newtune.train import wandb_model

            try:
                getattr(wandb_model, call)(self.wandb_run, self.t, *args)
            except Exception as e:  # as a failing tracker: the training run goes on
                log.warning("W&B %s failed: %s", call, first_lines(e))

    def close_trackers(self) -> None:
        for name, close in getattr(self, "closers", []):
            try:
                close()
            except Exception as e:  # the run's own outputs are written; a tracker failing to close is a warning
                log.warning("%s did not close cleanly: %s", name, first_lines(e))
        self.closers = []

    def start_progress(self, completed: int) -> None:
        """A rich bar on a terminal; elsewhere (a log file, CI, Slurm) one plain line per logging step."""
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.started, self.start_step = time.perf_counter(), completed
        if not self.console.is_terminal:
            return

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
        for name, tracker in list(self.trackers):
            try:
                tracker(record, record["step"])
            except Exception as e:  # a tracker (network, server) must not end the training run
                log.warning("stopped logging to %s: %s", name, first_lines(e))
                self.trackers.remove((name, tracker))
        if "loss" in record and self.progress is not None:
            self.progress.update(self.task, loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                 tps=f"{record['tokens_per_s']:.0f}")
        elif "loss" in record:
            self.console.print(self.plain_line(record), highlight=False, soft_wrap=True)
        if "eval_loss" in record:
            extra = f", perplexity {record['eval_perplexity']:.2f}" if "eval_perplexity" in record else ""
            if "eval_rewards/accuracies" in record:  # preference runs
                extra += (f", rewards/margins {record['eval_rewards/margins']:.4f}, "
                          f"rewards/accuracies {record['eval_rewards/accuracies']:.2f}")
            self.console.print(f"step {record['step']}: eval_loss {record['eval_loss']:.4f}{extra}")
        self.last.update(record)

    def plain_line(self, record: dict) -> str:
        """`step 10/200  loss 1.2345  lr 2.00e-04  grad_norm 0.512  1,234 tok/s  ETA 0:03:10`, as the HF
        Trainer logs a dict per logging step where no progress bar can redraw."""
        import time

        done = record["step"] - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (self.total - record["step"]) if done > 0 else 0.0
        epoch = f"  epoch {record['epoch']:.2f}" if "epoch" in record else ""
        return (f"step {record['step']}/{self.total}{epoch}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
                f"grad_norm {record['grad_norm']:.3f}  {record['tokens_per_s']:,.0f} tok/s  ETA {clock(eta)}")

    def close(self) -> None:
        if not self.main:
            return
        if self.progress is not None:
            self.progress.stop()
        self.file.close()
        self.close_trackers()


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def numbers(record: dict) -> list[tuple[str, float]]:
    return [(k, float(v)) for k, v in record.items() if k != "step" and isinstance(v, int | float)]


def grouped(key: str) -> str:
    """TensorBoard / W&B names as transformers' callbacks write them: train/loss, eval/loss."""
    return f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"


def first_lines(e: Exception, limit: int = 400) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_losses(output_dir: str | Path, title: str | None = None) -> Path | None:
    """loss.png: training loss and eval loss by step (matplotlib, Agg backend), titled; None without data."""
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
    if title:
        ax.set_title(title, fontsize=10)
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


def plot_title(config_name: str | None, model: str | None, adapter: str | None, output_dir: str) -> str:
    """`quickstart.yml · SmolLM2-135M-Instruct (embedded) · lora`."""
    name = Path(config_name).name if config_name else Path(output_dir).name
    return f"{name} · {Path(model).name if model else 'SmolLM2-135M-Instruct (embedded)'} · {adapter or 'full fine-tune'}"


SUMMARY_FILE = "train_summary.json"


def write_summary(output_dir: str | Path, result: Any) -> Path:
    """train_summary.json in output_dir: the closing summary's values (precision and packing included)."""
    keys = ("steps", "seconds", "tokens", "trained_tokens", "tokens_per_s", "peak_memory_gb", "final_loss",
            "eval_loss", "eval_perplexity", "interrupted", "precision", "packing")
    data = {k: getattr(result, k) for k in keys}
    data["last_checkpoint"] = str(result.last_checkpoint) if result.last_checkpoint else None
    path = Path(output_dir) / SUMMARY_FILE
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    return path


def print_summary(console: Console, result: Any) -> None:
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
    if result.precision:
        rows.append(("precision", result.precision.removeprefix("precision: ")))
    if result.packing:
        rows.append(("packing", result.packing.removeprefix("packing: ")))
    if result.final_loss is not None:
        rows.append(("final loss", f"{result.final_loss:.4f}"))
    if result.eval_loss is not None:
        ppl = f" (perplexity {result.eval_perplexity:.2f})" if result.eval_perplexity is not None else ""
        rows.append(("eval loss", f"{result.eval_loss:.4f}{ppl}"))
    rows.append(("output", str(result.output_dir)))
    if result.last_checkpoint:
        rows.append(("checkpoint", str(result.last_checkpoint)))
    for k, v in rows:  # plain lines, soft-wrapped: paths are never cut short
        console.print(f"  [bold]{k:<12}[/bold] {escape(v)}", soft_wrap=True, highlight=False)
