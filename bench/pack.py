"""Packing efficiency and speed of newtune.data.pack: on a real dataset (--config) or on synthetic row-length
mixes. Prints a table; asserts nothing.

    .venv/bin/python bench/pack.py --config examples/alpaca.yml          # the config's datasets, tokenized
    .venv/bin/python bench/pack.py --config examples/alpaca.yml --seq 512 1024 2048
    .venv/bin/python bench/pack.py [--rows 100000] [--seq 2048 4096]     # synthetic mixes

Columns: rows (those that fit sequence_len: longer ones are dropped as the pipeline does with
excess_length_strategy: drop), bins (packed sequences), efficiency (real tokens / bins × seq), the padded
alternatives (every row padded to seq, as pad_to_sequence_len does; every micro-batch padded to its longest
row, the default without packing), and the packing time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from newtune.data.pack import pack_lengths, packing_efficiency
from newtune.train.precision import cpu_model_name  # torch-free


def mixes(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Length mixes shaped like common SFT sets (token counts, before the sequence_len cut)."""
    return {
        "chat (lognormal, median ~200)": rng.lognormal(5.3, 0.8, rows),
        "alpaca (short, median ~120)": rng.lognormal(4.8, 0.6, rows),
        "long docs (median ~900)": rng.lognormal(6.8, 0.7, rows),
        "uniform 1..2048": rng.uniform(1, 2048, rows),
    }


def longest_in_batch(lengths: np.ndarray, batch: int, seed: int) -> float:
    """Efficiency of unpacked training: shuffled micro-batches, each padded to its longest row."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    shuffled = lengths[order]
    padded = sum(int(shuffled[i:i + batch].max()) * len(shuffled[i:i + batch])
                 for i in range(0, len(shuffled), batch))
    return float(lengths.sum()) / padded


def report(name: str, raw: np.ndarray, seqs: list[int], batch: int, seed: int) -> None:
    for seq in seqs:
        lengths = np.clip(raw.astype(np.int64), 1, None)
        lengths = lengths[lengths <= seq]
        if not len(lengths):
            print(f"{name:32} {seq:5d} no row fits")
            continue
        t0 = time.perf_counter()
        bins = pack_lengths(lengths, seq, seed)
        dt = time.perf_counter() - t0
        eff = packing_efficiency(lengths, bins, seq)
        to_seq = lengths.sum() / (len(lengths) * seq)
        print(f"{name:32} {seq:5d} {len(lengths):8d} {len(bins):7d} {eff:10.2%} {to_seq:10.2%} "
              f"{longest_in_batch(lengths, batch, seed):12.2%} {dt:7.3f}")


def config_lengths(path: Path) -> tuple[str, np.ndarray, int, int, int]:
    """Token lengths of the config's training rows, through newtune's own pipeline (cached like preprocess)."""
    from newtune.data.pipeline import prepare_rows
    from newtune.data.tokenizer import tokenizer_for
    from newtune.load import load_config

    cfg = load_config(path)
    tok = tokenizer_for(cfg.model, light=True)
    prepared = prepare_rows(cfg.data, tok, seed=cfg.train.seed)
    names = ", ".join(str(d.path) for d in cfg.data.datasets or [])
    return names, np.asarray(prepared.train.lengths()), cfg.data.sequence_len, cfg.train.micro_batch_size, cfg.train.seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="a newtune/axolotl YAML config: pack its tokenized training rows "
                    "(default sequence lengths: the config's sequence_len)")
    ap.add_argument("--rows", type=int, default=100_000, help="rows per synthetic mix (without --config)")
    ap.add_argument("--seq", type=int, nargs="+", help="sequence lengths to pack into "
                    "(default: the config's sequence_len, or 2048 4096 for the synthetic mixes)")
    ap.add_argument("--batch", type=int, help="micro-batch size for the pad-to-longest column "
                    "(default: the config's micro_batch_size, or 8)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the packing order and of the batch shuffle")
    args = ap.parse_args()
    print(f"CPU: {cpu_model_name()} ({os.cpu_count()} cores)")
    print(f"{'data':32} {'seq':>5} {'rows':>8} {'bins':>7} {'efficiency':>10} {'pad to seq':>10} "
          f"{'pad longest':>12} {'time s':>7}")
    if args.config:
        name, lengths, seq, batch, _ = config_lengths(args.config)
        report(name[:32], lengths, args.seq or [seq], args.batch or batch, args.seed)
        return
    for name, raw in mixes(args.rows, np.random.default_rng(0)).items():
        report(name, raw, args.seq or [2048, 4096], args.batch or 8, args.seed)


if __name__ == "__main__":
    main()
