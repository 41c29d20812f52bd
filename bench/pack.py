"""Packing efficiency and speed of newtune.data.pack on realistic row-length mixes. Prints; asserts nothing.

    .venv/bin/python bench/pack.py [--rows 100000] [--seq 2048 4096]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from newtune.data.pack import pack_lengths, packing_efficiency


def mixes(rows: int, seq: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Length mixes shaped like common SFT sets (token counts, before the sequence_len cut)."""
    return {
        "chat (lognormal, median ~200)": rng.lognormal(5.3, 0.8, rows),
        "alpaca (short, median ~120)": rng.lognormal(4.8, 0.6, rows),
        "long docs (median ~900)": rng.lognormal(6.8, 0.7, rows),
        "uniform 1..seq": rng.uniform(1, seq, rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seq", type=int, nargs="+", default=[2048, 4096])
    args = ap.parse_args()
    print(f"{'mix':32} {'seq':>5} {'rows':>7} {'bins':>7} {'efficiency':>10} {'no-pack eff':>11} {'time s':>7}")
    for seq in args.seq:
        for name, raw in mixes(args.rows, seq, np.random.default_rng(0)).items():
            lengths = np.clip(raw.astype(np.int64), 1, None)
            lengths = lengths[lengths <= seq]  # the pipeline drops longer rows (excess_length_strategy: drop)
            t0 = time.perf_counter()
            bins = pack_lengths(lengths, seq)
            dt = time.perf_counter() - t0
            eff = packing_efficiency(lengths, bins, seq)
            no_pack = lengths.sum() / (len(lengths) * seq)  # pad_to_sequence_len without packing
            print(f"{name:32} {seq:5d} {len(lengths):7d} {len(bins):7d} {eff:10.4%} {no_pack:11.2%} {dt:7.2f}")


if __name__ == "__main__":
    main()
