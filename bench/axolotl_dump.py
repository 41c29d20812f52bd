"""Dump axolotl's prepared training rows as JSONL, for token-exact comparisons with newtune.

Run with the *axolotl* venv's python (never imported by newtune; axolotl is not a newtune dependency):

    /tmp/axolotl-venv/bin/python bench/axolotl_dump.py CONFIG.yml OUT.jsonl [--tokenizer DIR]

It runs axolotl's own dataset preparation in-process (the path of `axolotl preprocess`:
load_cfg → load_tokenizer → prepare_datasets), then writes every prepared training row, in order, as
one JSON object per line: {"input_ids": [...], "labels": [...], "attention_mask": [...]} — the format
of `newtune preprocess --dump`. Rows/s of axolotl's tokenization (the dataset-wrapper step) and the
total wall time go to stderr.

Configs meant for comparison should set:

    shuffle_merged_datasets: false   # keep source order
    val_set_size: 0                  # every row goes to train
    sample_packing: false            # one row per example
    sequence_len: 2048               # rows longer than this are dropped by axolotl
    base_model: /path/to/local/dir   # or pass --tokenizer DIR

base_model must be a local directory holding a tokenizer and a config.json (axolotl reads the model
config; no weights are needed for preprocessing). `--tokenizer DIR` replaces base_model and
tokenizer_config; if DIR has no config.json, a copy of DIR with a tiny LlamaConfig is made.
Tokenizer dirs can be built with newtune's venv (SmolLM2 from the embedded GGUF, Mistral v1 from
mistral-common's tokenizer.model.v1), e.g. the way tests/conftest.py builds smol_tok_dir and
mistral_tok_dir:

    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(<dir of newtune.embedded.gguf_path()>, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tok.save_pretrained(DIR)

Relative dataset `path:` values are tried relative to the config file's folder when they do not
exist relative to the current directory. `dataset_num_proc` defaults to 1 here (axolotl's default is
the CPU count) unless the config or --num-proc sets it. Nothing is cached between runs: each run
prepares into a fresh temporary dataset_prepared_path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _name, _value in {
    "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false",
    "AXOLOTL_IS_PREPROCESS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "AXOLOTL_LOG_LEVEL": "INFO" if "--verbose" in sys.argv else "WARNING",
}.items():
    os.environ.setdefault(_name, _value)


TRAINING_DEFAULTS = {"learning_rate": 1e-4, "micro_batch_size": 1, "num_epochs": 1,
                     "gradient_accumulation_steps": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path, help="axolotl YAML config")
    p.add_argument("out", type=Path, help="output JSONL, one prepared training row per line")
    p.add_argument("--tokenizer", type=Path, help="local tokenizer/model dir; replaces base_model")
    p.add_argument("--num-proc", type=int, help="dataset_num_proc (default: the config's, else 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                   help="override a top-level config key, e.g. --set train_on_inputs=true")
    p.add_argument("--columns", default="input_ids,labels,attention_mask",
                   help="comma-separated columns to write (missing ones are skipped)")
    p.add_argument("--verbose", action="store_true", help="keep axolotl's INFO logs (the resolved config)")
    p.add_argument("--keep-prepared", type=Path, help="prepare into this dir instead of a temporary one")
    return p.parse_args(argv)


def model_dir_for(tokenizer_dir: Path, scratch: Path) -> Path:
    """A dir axolotl accepts as base_model: tokenizer_dir itself, or a copy with a tiny LlamaConfig."""
    if (tokenizer_dir / "config.json").exists():
        return tokenizer_dir
    import shutil

    from transformers import AutoTokenizer, LlamaConfig

    d = scratch / "model"
    shutil.copytree(tokenizer_dir, d)
    tok = AutoTokenizer.from_pretrained(d)
    LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id).save_pretrained(d)
    return d


def build_raw_config(args: argparse.Namespace, scratch: Path) -> dict:
    """Read the YAML and apply what this script controls (paths, overrides, scratch dirs)."""
    import yaml

    raw = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
    for item in args.set:
        key, _, value = item.partition("=")
        raw[key] = yaml.safe_load(value)
    if args.tokenizer:
        model_dir = str(model_dir_for(args.tokenizer.resolve(), scratch))
        raw["base_model"] = model_dir
        raw["tokenizer_config"] = model_dir
    if args.num_proc is not None:
        raw["dataset_num_proc"] = args.num_proc
    raw.setdefault("dataset_num_proc", 1)
    for key, value in TRAINING_DEFAULTS.items():  # required by axolotl's schema, unused by preprocessing
        raw.setdefault(key, value)
    raw.setdefault("output_dir", str(scratch / "out"))
    prepared = args.keep_prepared or scratch / "prepared"
    raw["dataset_prepared_path"] = str(prepared)
    base = args.config.resolve().parent
    for ds in list(raw.get("datasets") or []) + list(raw.get("test_datasets") or []):
        path = ds.get("path") if isinstance(ds, dict) else None
        if path and not Path(path).is_absolute() and not Path(path).exists() and (base / path).exists():
            ds["path"] = str(base / path)
    return raw


class WrapperTimer:
    """Times axolotl's dataset-wrapper step (the tokenization map) and counts the rows it sees."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows_in = 0
        self.rows_out = 0

    def install(self) -> None:
        import axolotl.utils.data.sft as sft

        original = sft.get_dataset_wrapper

        def timed(*a, **kw):
            dataset = kw.get("dataset")
            start = time.perf_counter()
            result = original(*a, **kw)
            self.seconds += time.perf_counter() - start
            try:
                self.rows_in += len(dataset)
                self.rows_out += len(result[0])
            except TypeError:  # streaming datasets have no length
                pass
            return result

        sft.get_dataset_wrapper = timed


def as_list(value):
    return value.tolist() if hasattr(value, "tolist") else value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="axolotl_dump_") as tmp:
        scratch = Path(tmp)
        raw = build_raw_config(args, scratch)

        from axolotl.cli.args import PreprocessCliArgs
        from axolotl.cli.config import load_cfg
        from axolotl.common.datasets import load_datasets, load_preference_datasets
        from axolotl.utils.dict import DictDefault
        from axolotl.utils.trainer import disable_datasets_caching

        imports_seconds = time.perf_counter() - wall_start
        timer = WrapperTimer()
        timer.install()
        cfg_start = time.perf_counter()
        cfg = load_cfg(DictDefault(raw), is_preprocess=True)
        cfg_seconds = time.perf_counter() - cfg_start
        cfg.is_preprocess = True
        with disable_datasets_caching():
            loader = load_preference_datasets if cfg.rl else load_datasets
            prep_start = time.perf_counter()
            meta = loader(cfg=cfg, cli_args=PreprocessCliArgs(debug_num_examples=0, download=False))
            prep = time.perf_counter() - prep_start
        train = meta.train_dataset
        if meta.eval_dataset is not None and len(meta.eval_dataset):
            print(f"warning: {len(meta.eval_dataset)} rows went to eval (set val_set_size: 0); "
                  "only train rows are written", file=sys.stderr)

        wanted = [c for c in args.columns.split(",") if c]
        columns = [c for c in wanted if c in train.column_names] if not cfg.rl else train.column_names
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_start = time.perf_counter()
        with args.out.open("w", encoding="utf-8") as f:
            for row in train.select_columns(columns):
                f.write(json.dumps({c: as_list(row[c]) for c in columns}) + "\n")
        write = time.perf_counter() - write_start
    wall = time.perf_counter() - wall_start
    rate = timer.rows_in / timer.seconds if timer.seconds else float("nan")
    print(f"axolotl tokenization: {timer.rows_in} rows in {timer.seconds:.3f}s = {rate:,.0f} rows/s "
          f"({timer.rows_out} rows after the strategy)", file=sys.stderr)
    print(f"setup + imports: {imports_seconds:.3f}s; axolotl load_cfg: {cfg_seconds:.3f}s; "
          f"dataset preparation (load, tokenize, filter, save): {prep:.3f}s; writing JSONL: {write:.3f}s",
          file=sys.stderr)
    print(f"wrote {len(train)} rows to {args.out}; total wall time {wall:.2f}s "
          "(including imports and config validation)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
