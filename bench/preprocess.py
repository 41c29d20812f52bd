"""Preprocessing speed: rows/s per format on generated ~125-token rows; optionally against axolotl.

    .venv/bin/python bench/preprocess.py [--rows 20000] [--tokenizer DIR] [--axolotl-venv /tmp/axolotl-venv]

Generates alpaca, chat_template, input_output and completion data, prepares each into a fresh cache
(SmolLM2 tokenizer by default), and prints rows/s and tokens/s (one-time imports left out). It also
times `newtune preprocess` of 2,000 alpaca and chat_template rows end to end (start-up included).
With --axolotl-venv it runs axolotl 0.21 on the same data in the same run (bench/axolotl_dump.py), prints the speed ratio and whether the rows are
identical. Prints numbers, asserts nothing. On a shared CPU wall rows/s are noisy; rows per CPU-second
(all threads of this process) show the work done, independent of the load.

Beside each format it prints the raw tokenizer on the same rows in the same run: each row rendered to its full
text (every segment newtune's format writes, BOS/EOS included, joined), then `tokenizers.Tokenizer.encode_batch`
of those texts in batches of newtune's batch size with add_special_tokens=False (as newtune calls it), rendering
left out of the timing. "×raw" is newtune's rate over raw's, in rows/s (wall) and in rows per CPU-second; the load
average is printed with each line (the machine may be shared: CPU-second ratios are the steadier ones).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newtune.train.precision import cpu_model_name  # torch-free

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no will can more about what up "
         "time model data train token answer question python value number list system write explain simple").split()
FORMATS = ("alpaca", "chat_template", "input_output", "completion")


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_row(kind: str, rng: random.Random) -> dict:
    """About 125 SmolLM2 tokens per row, a third of it prompt."""
    if kind == "alpaca":
        return {"instruction": words(rng, 20), "input": words(rng, 12) if rng.random() < 0.5 else "",
                "output": words(rng, 60)}
    if kind == "chat_template":
        return {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                             {"role": "user", "content": words(rng, 25)},
                             {"role": "assistant", "content": words(rng, 70)}]}
    if kind == "input_output":
        return {"segments": [{"text": "<|im_start|>user\n" + words(rng, 35) + "<|im_end|>\n", "label": False},
                             {"text": "<|im_start|>assistant\n" + words(rng, 75) + "<|im_end|>", "label": True}]}
    return {"text": words(rng, 115)}


def write_data(kind: str, n: int, directory: Path) -> Path:
    rng = random.Random(0)
    path = directory / f"{kind}.jsonl"
    with open(path, "w") as f:
        for _ in range(n):
            f.write(json.dumps(make_row(kind, rng)) + "\n")
    return path


def config_text(kind: str, data: Path, tokenizer: str, prepared: Path) -> str:
    extra = "    chat_template: tokenizer_default\n" if kind == "chat_template" else ""
    return (f"base_model: {tokenizer}\ndatasets:\n  - path: {data}\n    type: {kind}\n{extra}"
            f"sequence_len: 2048\nval_set_size: 0\nshuffle_merged_datasets: false\nsample_packing: false\n"
            f"dataset_prepared_path: {prepared}\n")


def bench_newtune(cfg_path: Path, dump: Path | None) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds of all threads, rows, tokens) of one preparation, in-process, fresh cache."""
    from rich.console import Console

    from newtune.data.inspect import write_dump
    from newtune.data.pipeline import prepare_rows
    from newtune.data.tokenizer import tokenizer_for
    from newtune.load import load_config

    cfg = load_config(cfg_path)
    tok = tokenizer_for(cfg.model, light=True)
    preimport(cfg)
    cpu = time.process_time()
    prepared = prepare_rows(cfg.data, tok, seed=cfg.train.seed, console=Console(file=open(os.devnull, "w")))
    s = prepared.summary
    cpu = time.process_time() - cpu
    if dump is not None:
        write_dump(prepared.train.iter_encoded(), dump)
    return s.seconds, cpu, s.train.rows_in, s.train.tokens


def bench_raw(cfg_path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rows) of the raw Rust tokenizer's `encode_batch` on each row's full rendered text."""
    from newtune.data.encode import plain_backend
    from newtune.data.rowcodec import format_context, render_rows
    from newtune.data.sources import iter_batches
    from newtune.data.tokenizer import tokenizer_for
    from newtune.load import load_config

    cfg = load_config(cfg_path)
    tok = tokenizer_for(cfg.model, light=True)
    backend = plain_backend(tok)
    if backend is None:
        sys.exit("the raw reference needs a tokenizer that newtune calls through its Rust backend")
    ds = cfg.data.datasets[0]
    ctx = format_context(cfg.data, tok)
    batches = []
    for batch in iter_batches(ds):
        kind, outputs = render_rows(batch.rows, ds, cfg.data, tok, ctx)
        if kind not in ("segments", "joined"):
            return 0.0, 0.0, 0
        batches.append(["".join(s.text for s in segs) for segs in outputs])
    start, cpu = time.perf_counter(), time.process_time()
    for texts in batches:
        backend.encode_batch(texts, add_special_tokens=False)
    return time.perf_counter() - start, time.process_time() - cpu, sum(map(len, batches))


def preimport(cfg: object) -> None:
    """One-time imports are start-up, timed by the end-to-end lines, not throughput: numpy, pyarrow, filelock,
    and for chat templates transformers' Jinja environment (importing transformers takes ~0.3 s)."""
    import filelock  # noqa: F401
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401

    if any(ds.type_name == "chat_template" for ds in cfg.data.datasets):
        import transformers.utils.chat_template_utils  # noqa: F401


def run_axolotl(venv: Path, cfg_path: Path, out: Path) -> float | None:
    """axolotl's tokenization rows/s (its own stderr line), writing its rows to `out`."""
    cmd = [str(venv / "bin" / "python"), str(ROOT / "bench" / "axolotl_dump.py"), str(cfg_path), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    m = re.search(r"axolotl tokenization: .*?= ([\d.,]+) rows/s", r.stderr)
    if r.returncode != 0 or m is None:
        print(f"    axolotl failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
        return None
    return float(m.group(1).replace(",", ""))


def compare(a: Path, b: Path) -> str:
    rows_a = [json.loads(line) for line in a.read_text().splitlines()]
    rows_b = [json.loads(line) for line in b.read_text().splitlines()]
    if rows_a == rows_b:
        return f"identical ({len(rows_a)} rows)"
    first = next((i for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=False)) if x != y), min(len(rows_a), len(rows_b)))
    return f"DIFFERENT ({len(rows_a)} vs {len(rows_b)} rows; first difference at row {first})"


def end_to_end(kind: str, tokenizer: str, work: Path) -> float:
    """Wall seconds of `newtune preprocess` on 2,000 rows of `kind`, start-up included, fresh cache."""
    (work / f"e2e-{kind}").mkdir()
    data = write_data(kind, 2000, work / f"e2e-{kind}")
    cfg = work / f"e2e-{kind}" / "cfg.yml"
    cfg.write_text(config_text(kind, data, tokenizer, work / f"e2e-{kind}" / "prep"))
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "newtune"), "preprocess", str(cfg)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--tokenizer", default=None, help="tokenizer dir (default: axolotl's smollm2 dir, else embedded)")
    ap.add_argument("--axolotl-venv", type=Path, default=None)
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args()
    default_tok = Path("/tmp/axolotl-venv/tokenizers/smollm2")
    tokenizer = args.tokenizer or (str(default_tok) if default_tok.exists() else "embedded:smollm2-135m-instruct")
    if args.axolotl_venv is not None:
        ready = args.axolotl_venv / "READY"
        for _ in range(60):
            if ready.exists():
                break
            time.sleep(5)
        if not ready.exists():
            sys.exit(f"{ready} not found: the axolotl venv is not ready")
    print(f"CPU: {cpu_model_name()} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); tokenizer {tokenizer}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in args.formats.split(","):
            (work / kind).mkdir()
            data = write_data(kind, args.rows, work / kind)
            cfg = work / kind / "cfg.yml"
            cfg.write_text(config_text(kind, data, tokenizer, work / kind / "prep"))
            dump = work / kind / "newtune.jsonl" if args.axolotl_venv else None
            secs, cpu, rows, tokens = bench_newtune(cfg, dump)
            line = (f"{kind:14s} newtune {rows / secs:8,.0f} rows/s {tokens / secs:10,.0f} tok/s  "
                    f"{rows / cpu:8,.0f} rows/CPU-s  ({tokens / rows:.0f} tok/row)")
            raw_secs, raw_cpu, raw_rows = bench_raw(cfg)
            if raw_rows:
                line += (f"  raw encode_batch {raw_rows / raw_secs:8,.0f} rows/s {raw_rows / raw_cpu:8,.0f} rows/CPU-s  "
                         f"×raw {rows / secs / (raw_rows / raw_secs):.2f} (wall) {rows / cpu / (raw_rows / raw_cpu):.2f} (CPU)")
            line += f"  [load {os.getloadavg()[0]:.1f}]"
            if args.axolotl_venv is not None:
                ax = run_axolotl(args.axolotl_venv, cfg, work / kind / "axolotl.jsonl")
                if ax:
                    line += f"  axolotl {ax:8,.0f} rows/s  ×{rows / secs / ax:.1f}  "
                    line += compare(dump, work / kind / "axolotl.jsonl")
            print(line, flush=True)
        for kind in ("alpaca", "chat_template"):
            print(f"newtune preprocess, 2,000 {kind} rows, wall incl. start-up: {end_to_end(kind, tokenizer, work):.2f} s")


if __name__ == "__main__":
    main()
