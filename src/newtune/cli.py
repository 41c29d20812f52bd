"""The `newtune` command: load the config, call one function, print with rich.

Every command takes CONFIG plus overrides: `--set key=value` (repeatable) or `--key value` for any
config key, validated like the file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from newtune import __version__
from newtune.errors import NewtuneError

app = typer.Typer(
    name="newtune",
    help="Fine-tune large language models from one axolotl-compatible YAML file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)  # a long path or message stays one line (a log file, a copy-paste)
out = Console(soft_wrap=True)
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
ConfigArg = Annotated[Path, typer.Argument(help="The YAML config file.", show_default=False, metavar="CONFIG")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                  help="Override a config key: key=value (repeatable). Also: --key value.")]


def version_callback(value: bool) -> None:
    if value:
        out.print(f"newtune {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the libraries' own progress bars and notices "
                                          "(also after the command: newtune train CONFIG --verbose).")] = False,
) -> None:
    """Fine-tune large language models from one axolotl-compatible YAML file."""
    from newtune.env import check_environment, value

    check_environment()  # a NEWTUNE_* variable with a value newtune does not know: exit 2 before any work
    setup_logging(verbose or value(VERBOSE_ENV) == "1")


VERBOSE_ENV = "NEWTUNE_VERBOSE"
# Library notices about things newtune has already handled: shown only with --verbose.
HANDLED_WARNINGS = (
    (FutureWarning, r".*is_gradient_checkpointing.*"),  # peft 0.21 calls transformers' deprecated name
    (UserWarning, r"Position ids are not supported for parameter efficient tuning"),  # soft prompts: unpacked rows
    (UserWarning, r"Could not find a config file in .*"),  # peft, a GGUF base: newtune saves embeddings itself
    (FutureWarning, r".*`past_key_values`.*"),  # peft's prefix tuning forward, the name transformers 5 renamed
)
HANDLED_LOGS = {  # logger name → message start
    "transformers.quantizers.quantizer_gguf": "Loading a GGUF checkpoint with its weights packed",  # newtune picks the dtype
}


def setup_logging(verbose: bool = False) -> None:
    """newtune's INFO messages (which model is used, adapter targets, ...) to stderr: through rich on a terminal,
    as plain unwrapped lines otherwise; under
    torchrun only rank 0 logs them. Without `verbose`: no library progress bars (transformers' `Loading
    weights`, hub downloads) and none of the notices in HANDLED_WARNINGS / HANDLED_LOGS."""
    import logging
    import warnings

    from rich.logging import RichHandler

    rank = int(os.environ.get("RANK", "0") or 0)
    logger = logging.getLogger("newtune")
    if not logger.handlers:
        if console.is_terminal:
            logger.addHandler(RichHandler(console=console, show_time=False, show_path=False, markup=False))
        else:  # a log file (nohup, Slurm, CI, `> log`): one plain line per message, never wrapped or padded
            plain = logging.StreamHandler(sys.stderr)
            plain.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
            logger.addHandler(plain)
        logger.propagate = False
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by transformers' tqdm when it loads
    for category, message in HANDLED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, start in HANDLED_LOGS.items():
        logging.getLogger(name).addFilter(lambda record, start=start: not record.getMessage().startswith(start))
    if rank != 0:  # the other ranks repeat rank 0's library notices
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        warnings.simplefilter("ignore")


def extra_overrides(args: list[str]) -> list[str]:
    """`--learning_rate 1e-4 --datasets[0].path=x --sample_packing` → ['learning_rate=1e-4',
    'datasets[0].path=x', 'sample_packing=true']. A bare `--key` means true only for a true/false key:
    a forgotten value is an error, never a silent `true` (which a number key would read as 1)."""
    from newtune.config.load import takes_bool

    items, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise NewtuneError("command line", f"unexpected argument '{arg}'", "overrides look like --key value or --set key=value")
        key = arg[2:].replace("-", "_") if "=" not in arg else arg[2:]
        if "=" in key:
            items.append(key)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            items.append(f"{key}={args[i + 1]}")
            i += 2
        elif takes_bool(key):
            items.append(f"{key}=true")
            i += 1
        else:
            raise NewtuneError("command line", f"{arg} has no value",
                               f"give one: {arg} VALUE or {arg}=VALUE (only true/false keys may stand alone)")
    return items


def before_torch() -> None:
    """For the commands that run torch, before it loads OpenMP: spin briefly on a free CPU, sleep on a
    shared one (newtune/threads.py). check and preprocess never import torch and skip the 0.1 s sample."""
    from newtune.threads import configure_openmp

    configure_openmp()


def load(config: Path, sets: list[str] | None, ctx: typer.Context):
    from newtune.load import load_config

    return load_config(config, list(sets or []) + extra_overrides(list(ctx.args)))


@app.command(context_settings=OVERRIDES)
def check(ctx: typer.Context, config: ConfigArg, set_: SetOpt = None) -> None:
    """Validate CONFIG; print the resolved config, unset keys as the values used (marked `# derived`)."""
    from newtune.check import effective_yaml, missing_dataset_files, missing_model_paths
    from newtune.config.gpu import gpu_keys

    cfg = load(config, set_, ctx)
    out.print(effective_yaml(cfg), end="", markup=False, highlight=False, soft_wrap=True)  # YAML: never wrapped
    files, models = missing_dataset_files(cfg), missing_model_paths(cfg)
    for key, path in files + models:
        console.print(f"[yellow]warning:[/yellow] {key}: {escape(path)} does not exist (relative paths are resolved "
                      f"against the working directory, {escape(str(Path.cwd()))}); preprocess and train need it",
                      highlight=False, soft_wrap=True)
    if files or models:
        said = [f"{len(files)} dataset file{'s' if len(files) > 1 else ''}" if files else "",
                f"{len(models)} model path{'s' if len(models) > 1 else ''}" if models else ""]
        console.print(f"[yellow]![/yellow] {config} is valid, but {' and '.join(s for s in said if s)} "
                      f"{'are' if len(files) + len(models) > 1 else 'is'} missing", soft_wrap=True)
    else:
        console.print(f"[green]✓[/green] {config} is valid", soft_wrap=True)
    needs_gpu = gpu_keys(cfg)
    if needs_gpu:
        console.print(f"note: {', '.join(needs_gpu)} need{'s' if len(needs_gpu) == 1 else ''} a CUDA GPU; "
                      "train refuses them on a machine without one", markup=False, highlight=False, soft_wrap=True)


@app.command()
def migrate(
    config: ConfigArg,
    write: Annotated[bool, typer.Option("--write", help="Rewrite CONFIG in place (atomically) instead of printing the diff.")] = False,
) -> None:
    """Move every old axolotl key of CONFIG to its current form; print the change as a diff."""
    from newtune.config.migrate import diff, migrate_text, write_atomically
    from newtune.errors import ConfigError

    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(config), [f"file not found (relative paths start at the working directory, {Path.cwd()})"]) from None
    except IsADirectoryError:
        raise ConfigError(str(config), ["is a directory; CONFIG is the YAML file (e.g. config.yml)"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(config), [f"not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    new, changes = migrate_text(text, str(config))
    for change in changes:
        mark = "refused by axolotl; " if change.refused and not change.moved else ""
        kept = " (left as it is: decide yourself)" if not change.moved else ""
        console.print(f"{change.where}: {mark}{change.message}{kept}", markup=False, highlight=False, soft_wrap=True)
    if new == text:
        console.print(f"{config}: nothing to migrate" if not changes else f"{config}: nothing rewritten",
                      markup=False, highlight=False, soft_wrap=True)
        return
    if write:
        write_atomically(config, new)
        console.print(f"[green]✓[/green] {escape(str(config))} rewritten ({sum(c.moved for c in changes)} keys moved)",
                      soft_wrap=True)
    else:
        out.print(diff(text, new, str(config)), end="", markup=False, highlight=False)


@app.command(context_settings=OVERRIDES)
def preprocess(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOpt = None,
    debug: Annotated[bool, typer.Option(help="Show the first rows token by token: token(label, id), tokens decoded "
                                        "with visible whitespace (␣five, \\n); masked dim, trained green.")] = False,
    debug_num_examples: Annotated[int, typer.Option(help="Rows shown by --debug.")] = 3,
    debug_text_only: Annotated[bool, typer.Option(help="Show decoded text with masked spans dimmed "
                                                  "([[bracketed]] when the output is not a terminal).")] = False,
    debug_pieces: Annotated[bool, typer.Option(help="--debug with the tokenizer's raw pieces (Ġfive, Ċ).")] = False,
    dump: Annotated[Path | None, typer.Option(help="Write every training row as JSONL (input_ids, labels, attention_mask).")] = None,
) -> None:
    """Tokenize and cache the datasets of CONFIG; print a summary (to stdout; progress to stderr)."""
    from newtune.data.pipeline import run_preprocess

    cfg = load(config, set_, ctx)
    run_preprocess(cfg, console, debug=debug or debug_text_only or debug_pieces, debug_num_examples=debug_num_examples,
                   debug_text_only=debug_text_only, debug_pieces=debug_pieces, dump=dump, out=out,
                   protected=(config,))


@app.command(context_settings=OVERRIDES)
def train(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOpt = None,
    nproc: Annotated[int | None, typer.Option(
        min=1, help="Start N processes on this machine (torch's elastic launcher; gloo on CPU, nccl on GPUs).")] = None,
    nnodes: Annotated[int, typer.Option(min=1, help="Nodes of a multi-node run: the same command on each, with --rdzv-endpoint.")] = 1,
    rdzv_endpoint: Annotated[str | None, typer.Option(help="HOST:PORT where the nodes meet (one node's address).")] = None,
    rdzv_timeout: Annotated[int, typer.Option(min=1, help="Seconds to wait for all nodes to join.")] = 600,
) -> None:
    """Fine-tune as CONFIG says: full, LoRA/QLoRA/DoRA or soft prompts; writes to output_dir."""
    cfg = load(config, set_, ctx)  # a config mistake is reported once, before any process starts
    if nproc is not None or nnodes > 1:
        from newtune.train.distributed import check_world
        from newtune.train.launch import launch

        check_world(cfg.distributed, world=(nproc or 1) * nnodes)
        workers = ["train", str(config), *(f"--set={s}" for s in set_ or []), *ctx.args]
        launch(nproc or 1, workers, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint, rdzv_timeout=rdzv_timeout)
        return
    before_torch()
    from newtune.train.loop import run_training

    result = run_training(cfg, console, summary=out, config_name=str(config))
    if result.stopped == "loss_watchdog":  # the loss blew up: a checkpoint is kept, but the run failed
        raise typer.Exit(1)
    if result.interrupted:  # Ctrl-C: a checkpoint is saved, but the run did not finish (as `&&` chains must see)
        raise typer.Exit(130)


@app.command(context_settings=OVERRIDES)
def inference(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOpt = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt; omitted: read stdin.")] = None,
    chat: Annotated[bool, typer.Option(help="Interactive multi-turn chat.")] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 128,
    temperature: Annotated[float, typer.Option(help="0: greedy decoding.")] = 0.0,
    base: Annotated[bool, typer.Option(help="Answer with the base model, without the fine-tune.")] = False,
    task_id: Annotated[int | None, typer.Option(help="multitask_prompt_tuning: the task whose prompt answers "
                                                "(default: the first dataset's task_id, else 0).")] = None,
) -> None:
    """Answer a prompt with the fine-tuned model in output_dir, in the format it was trained with."""
    before_torch()
    from newtune.export.infer import run_inference

    run_inference(load(config, set_, ctx), console, out, prompt=prompt, chat=chat,
                  max_new_tokens=max_new_tokens, temperature=temperature, base=base, task_id=task_id)


@app.command(context_settings=OVERRIDES)
def evaluate(ctx: typer.Context, config: ConfigArg, set_: SetOpt = None) -> None:
    """Evaluate the trained model in output_dir on the eval set: loss and perplexity."""
    before_torch()
    from newtune.train.evaluate import run_evaluate

    run_evaluate(load(config, set_, ctx), console, out)


@app.command("merge-lora", context_settings=OVERRIDES)
def merge_lora(
    ctx: typer.Context,
    config: ConfigArg,
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write; default output_dir/merged.")] = None,
) -> None:
    """Merge the LoRA adapter in output_dir into the base model; plain transformers loads the result."""
    before_torch()
    from newtune.export.merge import run_merge

    run_merge(load(config, set_, ctx), console, out_dir)


@app.command("merge-sharded")
def merge_sharded(
    output_dir: Annotated[Path, typer.Argument(help="The run's output_dir.", show_default=False, metavar="OUTPUT_DIR")],
    checkpoint: Annotated[Path | None, typer.Option(help="This checkpoint instead of the newest complete one.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write; default OUTPUT_DIR.")] = None,
) -> None:
    """Consolidate a sharded (FSDP2) checkpoint into a normal HF directory, e.g. after a crashed run."""
    before_torch()
    from newtune.train.sharded import run_merge

    run_merge(output_dir, console, checkpoint=checkpoint, out=out_dir)


def run() -> None:
    """Entry point: user errors print one message and exit 2, without a traceback."""
    if "--verbose" in sys.argv[1:]:  # anywhere on the line, not only before the command
        sys.argv.remove("--verbose")
        os.environ[VERBOSE_ENV] = "1"
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit's code instead of raising it here
        if isinstance(code, int) and code:
            sys.exit(code)
    except NewtuneError as e:
        console.print(f"[bold red]error:[/bold red] {escape(e.render())}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
    except (typer.Exit, SystemExit) as e:
        sys.exit(getattr(e, "exit_code", None) or getattr(e, "code", 0) or 0)
    except typer.TyperException as e:  # click's usage errors (typer bundles its own click): usage, exit 2
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        sys.exit(e.exit_code)
