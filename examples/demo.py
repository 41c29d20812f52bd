"""`make demo`: the embedded SmolLM2-135M-Instruct answers a few questions, learns a pirate persona with
LoRA (`newtune train examples/quickstart.yml`, a real CLI run), then answers the same questions again.

The questions are not in the training data: the fine-tuned model carries the persona over to new topics.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "quickstart.yml"
QUESTIONS = [
    "What is the capital of France?",
    "Why is the sky blue?",
    "How do I bake a cake?",
    "Give me a tip for running.",
]
MAX_NEW_TOKENS = 48

console = Console(stderr=True)


def answers(cfg, *, base: bool) -> tuple[list[str], float]:
    """Greedy answers to QUESTIONS, in the prompt format of the run; and the seconds it took."""
    from newtune.export.infer import generate, load_for_inference, stop_token_ids
    from newtune.export.prompt import Turn, prompt_ids

    started = time.perf_counter()
    model, tok, fmt = load_for_inference(cfg, Console(file=io.StringIO()), base=base)
    stops = stop_token_ids(model, tok, (cfg.data.eot_tokens or []) + fmt.get("stop", []))
    replies = []
    for q in QUESTIONS:
        ids = prompt_ids(fmt, [Turn("user", q)], tok, cfg.data)
        replies.append(generate(model, tok, ids, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0, stop_ids=stops).strip())
    return replies, time.perf_counter() - started


def newtune_command() -> list[str]:
    script = Path(sys.executable).with_name("newtune")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from newtune.cli import run; run()"]


def main() -> int:
    os.chdir(ROOT)  # the config's paths are relative to the repository root
    from transformers.utils import logging as hf_logging

    from newtune.errors import NewtuneError
    from newtune.load import load_config
    from newtune.model.load import ensure_embedded_converted

    hf_logging.disable_progress_bar()  # the "Loading weights" bars of the in-process loads

    cfg = load_config(CONFIG)
    out = Path(cfg.train.output_dir)
    timings: dict[str, float] = {}
    try:
        console.rule("[bold]1. The base model (embedded SmolLM2-135M-Instruct)")
        started = time.perf_counter()
        ensure_embedded_converted()  # the first run converts the shipped GGUF once (~20 s)
        timings["prepare the embedded model"] = time.perf_counter() - started
        before, timings["base answers"] = answers(cfg, base=True)
        for q, a in zip(QUESTIONS, before, strict=True):
            console.print(Text.assemble(("Q: ", "bold cyan"), q, "\n", ("A: ", "dim"), a, "\n"))
    except NewtuneError as e:
        console.print(f"[bold red]error:[/bold red] {e.render()}")
        return 2

    console.rule(f"[bold]2. Fine-tune: newtune train {CONFIG.relative_to(ROOT)}")
    started = time.perf_counter()
    run = subprocess.run([*newtune_command(), "train", str(CONFIG.relative_to(ROOT))], cwd=ROOT)
    timings["newtune train"] = time.perf_counter() - started
    if run.returncode != 0:
        console.print(f"[bold red]training failed (exit code {run.returncode})[/bold red]")
        return run.returncode

    console.rule("[bold]3. The fine-tuned model, same questions")
    after, timings["fine-tuned answers"] = answers(cfg, base=False)
    table = Table(show_lines=True, expand=True)
    table.add_column("question", ratio=2)
    table.add_column("base model", ratio=4)
    table.add_column("after LoRA fine-tune", ratio=4, style="green")
    for row in zip(QUESTIONS, before, after, strict=True):
        table.add_row(*map(Text, row))  # model text is shown as is, never as markup
    console.print(table)

    console.rule("[bold]Where things are")
    for name, what in [("adapter_model.safetensors", "LoRA adapter"), ("metrics.jsonl", "metrics, one line per step"),
                       ("loss.png", "loss plot"), ("prompt_format.json", "prompt format used by inference"),
                       ("newtune.yml", "resolved config")]:
        if (out / name).exists():
            console.print(f"  {what:34} {out / name}")
    console.print(f"\n  try it:  newtune inference {CONFIG.relative_to(ROOT)} --prompt \"What is a volcano?\"")
    console.print(f"           newtune inference {CONFIG.relative_to(ROOT)} --chat")
    console.print(f"           newtune merge-lora {CONFIG.relative_to(ROOT)}\n")
    for step, seconds in timings.items():
        console.print(f"  {step:28} {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
