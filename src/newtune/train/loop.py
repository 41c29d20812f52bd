"""`newtune train`: the training loop, on accelerate, readable top to bottom.

The loss of an optimizer step is the mean over every trained token of the step: its micro-batches
on every rank. Each micro-batch's loss *sum* is divided by the step's trained-token total, counted on
the host before any forward pass (and all-reduced across ranks), so 1 × 4 and 4 × 1 give the same
gradient. DDP averages gradients over ranks, so each rank's loss is scaled by the world size.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.run import RunConfig
from newtune.data.types import Tokenizer
from newtune.train import batches as B
from newtune.train import checkpoint as ckpt
from newtune.train.metrics import (
    Metrics,
    check_trackers,
    peak_memory_gb,
    plot_losses,
    plot_title,
    print_summary,
    write_summary,
)
from newtune.train.neftune import NEFTune
from newtune.train.offload import saved_on_cpu
from newtune.train.schedule import Schedule, make_schedule
from newtune.train.stopping import LOSS_BLOWUP, NO_EVAL_GAIN, StopFlag, Stopper, out_of_memory
from newtune.train.throughput import Throughput, log_record

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from newtune.data.rows import PreparedRows

log = logging.getLogger("newtune.train")


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    seconds: float
    tokens: int  # real (non-pad) input tokens trained on in this process's lifetime and before
    trained_tokens: int
    tokens_per_s: float
    peak_memory_gb: float
    final_loss: float | None
    eval_loss: float | None
    eval_perplexity: float | None
    last_checkpoint: Path | None
    interrupted: bool = False
    precision: str = ""  # what was chosen and why, as printed at the start
    packing: str = ""  # sample_packing: rows, bins and how full they are
    stopped: str | None = None  # stopping.LOSS_BLOWUP or stopping.NO_EVAL_GAIN when a stopping rule ended the run
    model: Any = field(default=None, repr=False)  # the trained model, unwrapped (for tests and callers)


@dataclass
class Run:
    """Everything the loop works with, built once by `setup`."""

    cfg: RunConfig
    console: Console
    acc: Any
    model: Any
    optimizer: Any
    scheduler: Any
    params: list
    tokenizer: Tokenizer
    data: PreparedRows
    lengths: np.ndarray
    sched: Schedule
    state: ckpt.TrainState
    resumed_from: Path | None
    device_type: str
    flat: bool  # micro-batches as one unpadded row with document boundaries (varlen attention)
    neftune: Any = None
    precision: str = ""
    packing: str = ""
    stopper: Stopper = field(default_factory=Stopper)
    stopped: str | None = None
    pref: Any = None  # train/preference.PreferenceObjective for `rl:` runs

    plans: dict = field(default_factory=dict)  # epoch → its micro-batches: each epoch is planned (packed) once

    def plan(self, epoch: int) -> list:
        if epoch not in self.plans:
            self.plans = {epoch: epoch_plan(self.cfg, self.lengths, epoch)}  # only the current epoch is kept
        return self.plans[epoch]

    def feed(self, start: int) -> Any:
        """This rank's collated micro-batches of each step of the current epoch from micro-batch `start` (train/feed.py)."""
        from newtune.train.feed import StepBatches, step_batches

        acc = self.acc
        steps = StepBatches(self.plan(self.state.epoch), start, self.cfg.train.gradient_accumulation_steps * acc.num_processes,
                            acc.process_index, acc.num_processes, self.collate)
        return step_batches(steps, self.cfg.train, self.device_type)

    def collate(self, micro: Any) -> Any:
        if self.pref is not None:
            return self.pref.collate(self.data.train, micro)
        t = self.cfg.train
        return B.collate(self.data.train, micro, packed=t.sample_packing, pad_id=self.tokenizer.pad_token_id,
                         pad_to=self.cfg.data.sequence_len if t.pad_to_sequence_len else None, flatten=self.flat)

    @property
    def has_eval(self) -> bool:
        return self.data.eval is not None and len(self.data.eval) > 0


def run_training(cfg: RunConfig, console: Console, *, summary: Console | None = None, config_name: str | None = None) -> TrainResult:
    """Prepare data and model, train as configured, write the outputs; resumable and interruptible.

    `summary`: the console for the closing summary (the CLI's stdout; default `console`); `config_name`
    titles loss.png."""
    run = setup(cfg, console)
    metrics = Metrics(cfg.train, cfg.flat(), total_steps=run.sched.total_steps, console=console,
                      main=run.acc.is_main_process, resume_step=run.state.step if run.resumed_from else 0)
    stop = StopFlag()
    started, tokens_before, seconds_before = time.perf_counter(), run.state.real_tokens, run.state.seconds
    metrics.wandb("watch", run.acc.unwrap_model(run.model))
    try:
        try:
            last_ckpt, eval_result = train_steps(run, metrics, stop, started)
        finally:
            stop.restore()
        interrupted = run.state.step < run.sched.total_steps and run.stopped != NO_EVAL_GAIN
        if not interrupted:
            save_final(run)
            metrics.wandb("log_final", Path(cfg.train.output_dir))
    finally:
        metrics.close()
    elapsed = time.perf_counter() - started
    result = TrainResult(
        output_dir=Path(cfg.train.output_dir), steps=run.state.step, seconds=seconds_before + elapsed,
        tokens=run.state.real_tokens, trained_tokens=run.state.tokens,
        tokens_per_s=(run.state.real_tokens - tokens_before) / max(elapsed, 1e-9),
        peak_memory_gb=peak_memory_gb(run.device_type), final_loss=metrics.last.get("loss"),
        eval_loss=eval_result.loss if eval_result else None,
        eval_perplexity=eval_result.perplexity if eval_result else None,
        last_checkpoint=last_ckpt, interrupted=interrupted, precision=run.precision, packing=run.packing, stopped=run.stopped,
        model=run.acc.unwrap_model(run.model))
    if run.acc.is_main_process:
        plot_losses(cfg.train.output_dir, plot_title(config_name, cfg.model.base_model, cfg.adapter.adapter,
                                                     cfg.train.output_dir))
        write_summary(cfg.train.output_dir, result)
        print_summary(summary if summary is not None else console, result)
    return result


def setup(cfg: RunConfig, console: Console) -> Run:
    """Precision, accelerator, data, model with its adapter, optimizer, schedule; then the resume state."""
    from accelerate import PartialState
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    from newtune.config.gpu import check_device
    from newtune.data.cache import cache_dir
    from newtune.data.inspect import packing_line
    from newtune.data.pipeline import prepare, prepare_pretraining
    from newtune.data.preference import prepare_pair_rows
    from newtune.data.tokenizer import tokenizer_for
    from newtune.model.adapters import apply_adapter
    from newtune.model.load import load_model
    from newtune.model.patches import enable_fast_paths, tile_mlps, uses_flat_batches
    from newtune.train import distributed, preflight
    from newtune.train import preference as P
    from newtune.train.optim import build_optimizer, build_scheduler
    from newtune.train.precision import apply_tf32, describe, resolve_precision

    t, out = cfg.train, Path(cfg.train.output_dir)
    check_trackers(t)
    # The device decides the precision, which the Accelerator needs up front (train/distributed.py: CPU or GPU).
    device_type = distributed.partial_state(cfg.distributed).device.type
    liger_note = check_device(cfg, device_type)  # GPU-only keys: refused here, before anything loads
    prec = resolve_precision(t, adapter=cfg.adapter.adapter, device_type=device_type)
    apply_tf32(t)
    if AcceleratorState._shared_state and not PartialState().use_distributed:
        AcceleratorState._reset_state()  # a later run in the same process (tests, notebooks) may change precision
    acc = distributed.make_accelerator(cfg.distributed, mixed_precision=prec.mixed_precision)
    if acc.is_main_process:
        console.print(describe(prec), highlight=False, soft_wrap=True)
        ckpt.remove_partial(out)
        if liger_note:
            log.info(liger_note)
    resume = ckpt.resume_path(t, main=acc.is_main_process)
    preflight.check(cfg.adapter, resume)  # before tokenizing: a refused run writes no cache entry

    tokenizer = tokenizer_for(cfg.model)
    with distributed.data_first(acc, cache_dir(cfg.data)):  # rank 0 builds the cache; the others wait on its lock
        if cfg.data.rl:  # preference pairs: prompt/chosen/rejected ids (data/preference.py)
            data = prepare_pair_rows(cfg.data, tokenizer, seed=t.seed, console=console if acc.is_main_process else None)
        elif cfg.data.datasets:
            data = prepare(cfg.data, tokenizer, seed=t.seed, console=console if acc.is_main_process else None,
                           tasks=cfg.adapter.adapter == "multitask_prompt_tuning")
        else:  # pretraining_dataset only: read the rows max_steps needs (config requires max_steps)
            rows = t.max_steps * t.micro_batch_size * t.gradient_accumulation_steps * acc.num_processes
            data = prepare_pretraining(cfg.data, tokenizer, rows=rows)
    lengths = data.train.lengths()  # read once from the cache's length column
    first_plan = epoch_plan(cfg, lengths, 0)  # the schedule's counts and the packing report come from epoch 0's plan
    has_eval = data.eval is not None and len(data.eval) > 0
    sched = make_schedule(cfg, len(first_plan), acc.num_processes, has_eval)
    packing = packing_line(lengths, cfg.data.sequence_len, bins=[b for m in first_plan for b in m]) if t.sample_packing else ""
    if packing and acc.is_main_process:
        console.print(packing, highlight=False)

    set_seed(t.seed)  # before the adapter exists: LoRA's initial weights come from this seed
    model = load_model(cfg.model, tokenizer, dtype=prec.torch_dtype())
    if t.gradient_checkpointing:
        reentrant = bool(t.gradient_checkpointing_kwargs and t.gradient_checkpointing_kwargs.use_reentrant)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
    added = bool(cfg.model.tokens or (cfg.model.special_tokens and cfg.model.special_tokens.additional_special_tokens))
    ref_model = P.frozen_reference(cfg, model, acc.device) if cfg.data.rl else None  # the starting weights
    model = apply_adapter(model, cfg.adapter, tokenizer, added_tokens=added)
    if cfg.adapter.unfrozen_parameters:
        from newtune.model.freeze import freeze_except

        freeze_except(model, cfg.adapter.unfrozen_parameters)
    tile_mlps(model, t.tiled_mlp, t.tiled_mlp_num_shards)
    fast = enable_fast_paths(model, device_type, cfg.adapter) if not distributed.shards(cfg.distributed) else []
    if fast and acc.is_main_process:
        log.info("fast paths: %s", ", ".join(fast))
    neftune = NEFTune(model, t.neftune_noise_alpha) if t.neftune_noise_alpha else None
    model.train()
    optimizer = build_optimizer(model, t, device_type)
    model, optimizer = acc.prepare(model, optimizer)
    # Not prepared by accelerate, which would step it once per process: we step it once per optimizer step.
    scheduler = build_scheduler(optimizer, t, sched.total_steps)
    state = ckpt.TrainState()
    if resume is not None:
        distributed.check_resume(resume, t.gradient_accumulation_steps, acc.num_processes)
        state = ckpt.load_checkpoint(resume, accelerator=acc, model=model, optimizer=optimizer, scheduler=scheduler)
        if acc.is_main_process:
            console.print(f"resuming from {resume} (step {state.step}, epoch {state.epoch})")
    params = [p for p in model.parameters() if p.requires_grad]
    pref = P.objective_for(cfg, tokenizer, ref_model) if cfg.data.rl else None
    make_output_dir(out, acc.is_main_process)  # only now: a run refused while setting up leaves none behind
    return Run(cfg, console, acc, model, optimizer, scheduler, params, tokenizer, data, lengths, sched, state,
               resume, device_type, flat=uses_flat_batches(model) and pref is None, neftune=neftune,
               precision=describe(prec), packing=packing, stopper=Stopper.of(t), pref=pref, plans={0: first_plan})


def epoch_plan(cfg: RunConfig, lengths: np.ndarray, epoch: int) -> list:
    """The micro-batches of `epoch` (packed bins under sample_packing), seeded by data_seed (else seed) + epoch.
    group_by_length groups as transformers does, over micro_batch_size × gradient_accumulation_steps rows."""
    t = cfg.train
    return B.epoch_plan(lengths, batch_size=t.micro_batch_size, packed=t.sample_packing,
                        capacity=cfg.data.sequence_len, seed=(t.seed if t.data_seed is None else t.data_seed) + epoch,
                        group_size=t.micro_batch_size * t.gradient_accumulation_steps if t.group_by_length else None,
                        drop_last=bool(t.dataloader_drop_last))


def make_output_dir(out: Path, main: bool) -> None:
    if main:
        out.mkdir(parents=True, exist_ok=True)


def train_steps(run: Run, metrics: Metrics, stop: StopFlag, started: float) -> tuple[Path | None, Any]:
    """Optimizer steps from run.state to the end (or to Ctrl-C); returns (last checkpoint, last eval)."""
    t, acc, state, sched = run.cfg.train, run.acc, run.state, run.sched
    seconds_before = state.seconds
    last_ckpt, eval_result = run.resumed_from, None
    log_loss, log_steps, log_time, log_tokens = None, 0, time.perf_counter(), state.real_tokens
    tkps = Throughput.start(state, started)
    plan, feed = run.plan(state.epoch), run.feed(state.batch_in_epoch)
    while state.step < sched.total_steps:
        chunk = plan[state.batch_in_epoch : state.batch_in_epoch + t.gradient_accumulation_steps * acc.num_processes]
        step_loss, grad_norm, lr, n_step, n_tokens, n_fed = optimizer_step(run, next(feed))
        state.step += 1
        state.batch_in_epoch += len(chunk)
        state.tokens += n_step
        state.real_tokens += n_tokens
        state.fed_tokens += n_fed
        log_loss = step_loss if log_loss is None else log_loss + step_loss
        log_steps += 1
        epoch_done = state.batch_in_epoch >= len(plan) or state.step >= sched.steps_per_epoch * (state.epoch + 1)
        if epoch_done:
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            if state.step < sched.total_steps:  # not after the last step: that epoch never comes
                feed.close()  # the DataLoader's workers, if any, stop
                plan, feed = run.plan(state.epoch), run.feed(0)

        record: dict[str, Any] = {}
        if state.step % t.logging_steps == 0 or state.step == sched.total_steps:
            now = time.perf_counter()
            record = log_record(run, log_loss / log_steps, lr, grad_norm, (state.real_tokens - log_tokens) / max(now - log_time, 1e-9))
            record.update(tkps.fields(t, state, now, acc.num_processes) if run.pref is None else {})
            log_loss, log_steps, log_time, log_tokens = None, 0, now, state.real_tokens
        final = state.step == sched.total_steps
        if sched.evaluates and ((sched.eval_every and state.step % sched.eval_every == 0) or final):
            eval_result = run_eval(run)
            record.update(step=state.step, eval_loss=eval_result.loss, **(
                eval_result.metrics if run.pref else {"eval_perplexity": eval_result.perplexity}))
        if record:
            metrics.log(record)
            run.stopped = run.stopper.check(record)  # every rank sees the same (reduced) losses
            if run.stopped and acc.is_main_process:
                log.warning(run.stopper.why)
        metrics.advance(state.step)

        due = (sched.save_every and state.step % sched.save_every == 0) or (sched.save_each_epoch and epoch_done)
        stopping = stop.requested(acc) or run.stopped == LOSS_BLOWUP
        if stopping or (due and not final):
            state.seconds = seconds_before + time.perf_counter() - started
            last_ckpt = save_checkpoint(run)
            metrics.wandb("log_checkpoint", last_ckpt, state.step, state.step / sched.steps_per_epoch)
        if stopping or run.stopped == NO_EVAL_GAIN:
            break
    feed.close()
    return last_ckpt, eval_result


def optimizer_step(run: Run, mine: list) -> tuple[Any, Any, float, int, int, int]:
    """Forward/backward over this rank's collated micro-batches of the step, clip, step; (loss, grad_norm, lr,
    trained, real and fed token counts of the step)."""
    import torch

    from newtune.train.loss import lm_loss_sum

    acc, model, t, world = run.acc, run.model, run.cfg.train, run.acc.num_processes
    n_step = sum(b.n_trained for b in mine)  # host ints: counted before any forward pass
    n_tokens = sum(b.n_tokens for b in mine)
    n_fed = sum(b.input_ids.numel() for b in mine)  # padding included (include_tkps' tokens/total)
    if world > 1:  # sync point: every rank needs the step's global token count
        counts = acc.reduce(torch.tensor([n_step, n_tokens, n_fed], device=acc.device), "sum").tolist()
        n_step, n_tokens, n_fed = int(counts[0]), int(counts[1]), int(counts[2])
    divisor = max(n_step, 1)
    lr = run.scheduler.get_last_lr()[0]  # the rate this step uses
    step_loss = torch.zeros((), device=acc.device)
    try:
        for i, batch in enumerate(mine):
            last = i == len(mine) - 1
            if run.neftune is not None:
                run.neftune.width = batch.width
            with nullcontext() if last else acc.no_sync(model):  # DDP all-reduces gradients on the last one only
                with acc.autocast(), saved_on_cpu(t.activation_offloading, run.device_type):  # autocast: the model's forward only
                    loss_sum, _ = (run.pref.loss_sum if run.pref else lm_loss_sum)(model, batch.to(acc.device))
                acc.backward(loss_sum * (world / divisor))  # DDP averages over ranks; × world undoes that
            step_loss += loss_sum.detach() / divisor
        grad_norm = acc.clip_grad_norm_(run.params, t.max_grad_norm or float("inf"))
        run.optimizer.step()
        if not acc.optimizer_step_was_skipped:  # fp16 overflow: the scaler skipped this step
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    except torch.OutOfMemoryError:
        raise out_of_memory(run.cfg, run.state.step) from None
    return step_loss * world, grad_norm, lr, n_step, n_tokens, n_fed


def save_checkpoint(run: Run) -> Path:
    from newtune.export.artifacts import save_artifacts

    out = Path(run.cfg.train.output_dir)
    path = ckpt.save_checkpoint(out, run.state, accelerator=run.acc, model=run.model, optimizer=run.optimizer,
                                scheduler=run.scheduler,
                                write_extras=lambda d: save_artifacts(d, run.cfg, run.tokenizer),
                                model_only=run.cfg.train.save_only_model)
    if run.acc.is_main_process:
        ckpt.prune(out, run.cfg.train.save_total_limit or ckpt.DEFAULT_TOTAL_LIMIT)
    return path


def run_eval(run: Run) -> Any:
    from newtune.train.evaluate import evaluate_loss

    if run.pref is not None:  # mean pair loss and the reward metrics (train/preference.py)
        return run.pref.evaluate(run.model, run.data.eval, run.acc, run.cfg.train.eval_batch_size
                                 or run.cfg.train.micro_batch_size)
    return evaluate_loss(run.model, run.data.eval, run.cfg, pad_id=run.tokenizer.pad_token_id, accelerator=run.acc)


def save_final(run: Run) -> None:
    """The adapter (peft) or the full model, plus config, tokenizer and prompt format, in output_dir."""
    from newtune.export.artifacts import save_artifacts

    acc, out = run.acc, Path(run.cfg.train.output_dir)
    state_dict = acc.get_state_dict(run.model)  # collective under FSDP/DeepSpeed
    if acc.is_main_process:
        acc.unwrap_model(run.model).save_pretrained(out, state_dict=state_dict, safe_serialization=True)
        save_artifacts(out, run.cfg, run.tokenizer)
    acc.wait_for_everyone()

