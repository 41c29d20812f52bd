"""Preference rows (`rl:`): source → format → Pair strings → token ids, as axolotl 0.21.0 and TRL 1.14 build them.

- axolotl: each row through its `type:` (data/formats/preference) into prompt/chosen/rejected strings;
  a pair whose prompt + chosen or prompt + rejected (tokenized without special tokens) exceeds
  sequence_len is dropped (excess_length_strategy: drop), refused (raise) or cut (truncate).
- TRL's DPO trainer: EOS appended to chosen/rejected unless they end with it; prompt, prompt+chosen and
  prompt+rejected each tokenized with the tokenizer's special tokens; chosen_ids is prompt+chosen after
  the prompt's length; pairs whose prompt alone fills sequence_len are dropped. The collator
  (train/preference.py) cuts prompt+completion to sequence_len, keeping the start.

Bad rows are one clear error naming file, line and field: an empty prompt, chosen or rejected, or a
missing field. Pairs whose chosen equals rejected teach nothing: they are kept, counted and warned about.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.data import AFTER_CACHE, DataConfig, DatasetConfig
from newtune.data import cache
from newtune.data.filters import PartStats
from newtune.data.formats.preference import PREFERENCE_FORMATS
from newtune.data.formats.preference.pair import Pair
from newtune.data.rows import EVAL_FILE, PreparedRows, Rows
from newtune.data.sources import iter_batches
from newtune.data.types import Tokenizer
from newtune.errors import DataError

if TYPE_CHECKING:
    from rich.console import Console

    from newtune.config.run import RunConfig

COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
SHOWN = 5  # identical pairs named in the warning


def format_pair(row: dict, ds: DatasetConfig, where: str) -> Pair:
    """One row → Pair; a missing or empty field is a DataError naming the row."""
    fmt = PREFERENCE_FORMATS[ds.type_name]
    try:
        pair = fmt.fn(row, ds, None)
    except KeyError as e:
        fields = ", ".join(k for k, v in row.items() if v is not None) or "no fields"
        raise DataError(f"{where} ({ds.type_name})", f"missing field {e.args[0]!r} (row has: {fields})",
                        "fix the row, or choose the dataset type whose fields the rows have") from None
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        raise DataError(f"{where} ({ds.type_name})", str(e), "check this row's fields against the dataset type") from None
    chosen, rejected = pair.answers or (pair.chosen, pair.rejected)
    for name, value in (("prompt", pair.prompt), ("chosen", chosen), ("rejected", rejected)):
        if not value.strip():
            raise DataError(f"{where} ({ds.type_name})", f"empty {name}",
                            "every pair needs a prompt, a chosen and a rejected answer; fix or remove the row")
    return pair


def lengths_without_specials(tok: Tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


def fit_pairs(pairs: list[Pair], where: list[str], data: DataConfig, tok: Tokenizer, stats: PartStats,
              ) -> tuple[list[Pair], list[str]]:
    """axolotl's length policy on the strings: drop, raise, or truncate chosen/rejected (by decoding)."""
    n = len(pairs)
    lens = lengths_without_specials(tok, [p.prompt for p in pairs] + [p.chosen for p in pairs]
                                    + [p.rejected for p in pairs])
    limit, strategy = data.sequence_len, data.excess_length_strategy
    kept, kept_where = [], []
    for i, pair in enumerate(pairs):
        lp, lc, lr = lens[i], lens[n + i], lens[2 * n + i]
        if lp + lc <= limit and lp + lr <= limit:
            kept.append(pair)
            kept_where.append(where[i])
            continue
        if strategy == "raise":
            raise DataError(where[i], f"the pair has {lp + max(lc, lr)} tokens (prompt {lp}, chosen {lc}, "
                            f"rejected {lr}), more than sequence_len {limit}",
                            "raise sequence_len, or set excess_length_strategy: drop or truncate")
        if strategy == "truncate" and lp < limit:
            room = limit - lp
            chosen, rejected = (cut(tok, s, room) if n_ > room else s for s, n_ in ((pair.chosen, lc), (pair.rejected, lr)))
            kept.append(Pair(pair.prompt, chosen, rejected))
            kept_where.append(where[i])
            stats.truncated += 1
            continue
        stats.drop(f"longer than sequence_len {limit}")
    return kept, kept_where


def cut(tok: Tokenizer, text: str, room: int) -> str:
    """axolotl's truncate: the first `room` tokens of text (no special tokens added), decoded back."""
    ids = tok(text, add_special_tokens=False)["input_ids"][:room]
    return tok.decode(ids, skip_special_tokens=False)


def tokenize_pairs(pairs: list[Pair], tok: Tokenizer) -> dict[str, list[list[int]]]:
    """TRL 1.14 DPOTrainer._prepare_dataset for string rows: EOS appended if missing, three tokenizer calls."""
    eos = tok.eos_token
    chosen = [p.chosen if p.chosen.endswith(eos) else p.chosen + eos for p in pairs]
    rejected = [p.rejected if p.rejected.endswith(eos) else p.rejected + eos for p in pairs]
    prompts = [p.prompt for p in pairs]
    prompt_ids = tok(prompts)["input_ids"]
    full_c = tok([p + c for p, c in zip(prompts, chosen, strict=True)])["input_ids"]
    full_r = tok([p + r for p, r in zip(prompts, rejected, strict=True)])["input_ids"]
    return {"prompt_ids": [list(x) for x in prompt_ids],
            "chosen_ids": [list(c[len(p):]) for p, c in zip(prompt_ids, full_c, strict=True)],
            "rejected_ids": [list(r[len(p):]) for p, r in zip(prompt_ids, full_r, strict=True)]}


def encode_pairs(pairs: list[Pair], tok: Tokenizer, sequence_len: int) -> tuple[dict[str, list], list[int]]:
    """Token columns plus the kept indices (TRL drops pairs whose prompt alone fills sequence_len)."""
    cols = tokenize_pairs(pairs, tok)
    keep = [i for i, p in enumerate(cols["prompt_ids"]) if len(p) < sequence_len]
    return {k: [v[i] for i in keep] for k, v in cols.items()}, keep


def pair_batches(entries: list[DatasetConfig], data: DataConfig, tok: Tokenizer, stats: PartStats,
                 label: str = "datasets") -> Iterator[dict[str, list]]:
    """Encoded, filtered columns per source batch, in order; `stats` counts what happened. An entry that gives no
    rows is an error; with several entries, errors lead with `datasets[i]` and the entry's path."""
    from newtune.data.entries import located, no_rows

    for i, ds in enumerate(entries):
        rows_before = stats.rows_in
        try:
            yield from entry_pair_batches(ds, data, tok, stats)
        except DataError as e:
            raise (located(e, f"{label}[{i}]", ds) if len(entries) > 1 else e) from None
        if stats.rows_in == rows_before:
            raise DataError(f"{label}[{i}] {ds.path}", no_rows(ds), "add rows to it, or remove this entry from " + label)


def entry_pair_batches(ds: DatasetConfig, data: DataConfig, tok: Tokenizer, stats: PartStats) -> Iterator[dict[str, list]]:
    for batch in iter_batches(ds):
        stats.rows_in += len(batch.rows)
        pairs = [format_pair(row, ds, where) for row, where in zip(batch.rows, batch.where, strict=True)]
        pairs, where = fit_pairs(pairs, batch.where, data, tok, stats)
        cols, keep = encode_pairs(pairs, tok, data.sequence_len)
        if len(keep) < len(pairs):
            stats.drop(f"prompt fills sequence_len {data.sequence_len}", len(pairs) - len(keep))
        for i in keep:
            if pairs[i].chosen == pairs[i].rejected:  # counted as "nothing to train": the pair's loss is flat
                stats.zero_trainable += 1
                if len(stats.zero_trainable_rows) < SHOWN:
                    stats.zero_trainable_rows.append(where[i])
        yield cols


def write_part(entries: list[DatasetConfig], data: DataConfig, tok: Tokenizer, path: Path, label: str = "datasets") -> PartStats:
    import pyarrow as pa

    stats = PartStats()
    ints = pa.list_(pa.int32())
    schema = pa.schema([(c, ints) for c in COLUMNS] + [("length", pa.int32())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for cols in pair_batches(entries, data, tok, stats, label):
            if not cols["prompt_ids"]:
                continue
            lengths = [min(len(p) + max(len(c), len(r)), data.sequence_len)
                       for p, c, r in zip(cols["prompt_ids"], cols["chosen_ids"], cols["rejected_ids"], strict=True)]
            writer.write_batch(pa.RecordBatch.from_pydict({**cols, "length": lengths}, schema=schema))
            stats.rows_out += len(lengths)
            stats.tokens += sum(len(p) * 2 + len(c) + len(r) for p, c, r in
                                zip(cols["prompt_ids"], cols["chosen_ids"], cols["rejected_ids"], strict=True))
            stats.trainable += sum(len(c) + len(r) for c, r in zip(cols["chosen_ids"], cols["rejected_ids"], strict=True))
    return stats


def build(data: DataConfig, tok: Tokenizer, directory: Path) -> dict:
    train = write_part(data.datasets, data, tok, directory / cache.ROWS_FILE)
    test = write_part(data.test_datasets, data, tok, directory / EVAL_FILE, "test_datasets") if data.test_datasets else None
    if train.rows_out == 0:
        reasons = ", ".join(f"{n} {r}" for r, n in train.dropped.items()) or "the datasets are empty"
        raise DataError("datasets", f"no preference pairs left ({reasons})", "check the dataset paths and sequence_len")
    if train.zero_trainable == train.rows_out:
        raise DataError("datasets", f"no pair teaches anything: in all {train.rows_out} pairs chosen equals rejected "
                        f"(e.g. {', '.join(train.zero_trainable_rows)})",
                        "check which fields the dataset type reads as chosen and rejected")
    return {"train": asdict(train), "test": asdict(test) if test else None}


def check_types(data: DataConfig) -> None:
    """Every dataset of an `rl:` run names a preference type and only its keys (as `check` reports them)."""
    from newtune.data.options import check_pair_datasets
    from newtune.errors import ConfigError

    problems = check_pair_datasets(data.model_dump(mode="json"))
    if problems:
        raise ConfigError("config", problems)


def prepare_pair_rows(data: DataConfig, tok: Tokenizer, *, seed: int, console: Console | None = None) -> PreparedRows:
    """Encode (or reuse the cache), shuffle and split: PreparedRows whose Arrow rows hold the pair columns."""
    from newtune.data.pipeline import source_identities
    from newtune.data.rows import Rows, Summary, shuffle_split
    from newtune.data.tokenizer import fingerprint

    start = time.perf_counter()
    check_types(data)
    root = cache.cache_dir(data)
    key = cache.cache_key(data.model_dump_json(exclude=AFTER_CACHE), fingerprint(tok), source_identities(data),
                          extra="pairs")
    with cache.locked(root, key):
        entry = cache.lookup(root, key)
        cached = entry is not None
        if entry is None:
            if console is not None:
                console.print(f"[dim]tokenizing pairs → {root / key}[/dim]")
            with cache.staging(root, key) as tmp:
                cache.write_meta(tmp, build(data, tok, tmp))
            entry = root / key
    meta = cache.read_meta(entry)
    train, evalset = shuffle_split(Rows(entry / cache.ROWS_FILE), data, seed)
    if (entry / EVAL_FILE).exists():
        evalset = Rows(entry / EVAL_FILE)
    summary = Summary(train=PartStats(**meta["train"]), test=PartStats(**meta["test"]) if meta.get("test") else None,
                      train_rows=len(train), eval_rows=len(evalset) if evalset is not None else 0,
                      seconds=time.perf_counter() - start, cached=cached, cache_path=str(entry))
    return PreparedRows(train, evalset, summary)


def iter_pairs(rows: Rows, limit: int) -> Iterator[dict[str, list[int]]]:
    """The first `limit` pairs of prepared Rows, in their order (for --debug and --dump)."""
    for start in range(0, min(limit, len(rows)), 1000):
        got = rows.fetch(range(start, min(start + 1000, limit, len(rows))), COLUMNS)
        yield from ({c: got[c][i] for c in COLUMNS} for i in range(len(got[COLUMNS[0]])))


def pair_views(pair: dict[str, list[int]]) -> list[tuple[str, dict[str, list[int]]]]:
    """prompt+chosen and prompt+rejected as Encoded rows: the prompt masked, the completion trained."""
    masked = [-100] * len(pair["prompt_ids"])
    return [(side, {"input_ids": pair["prompt_ids"] + pair[f"{side}_ids"], "labels": masked + pair[f"{side}_ids"]})
            for side in ("chosen", "rejected")]


def run_preprocess_pairs(cfg: RunConfig, tok: Tokenizer, console: Console, *, debug: bool, debug_num_examples: int,
                         debug_text_only: bool, dump: Path | None) -> Any:
    """`newtune preprocess` for `rl:` configs: cache the pairs; --debug shows each side with its mask."""
    from newtune.data import inspect

    prepared = prepare_pair_rows(cfg.data, tok, seed=cfg.train.seed, console=console)
    if debug:
        for i, pair in enumerate(iter_pairs(prepared.train, debug_num_examples)):
            for side, enc in pair_views(pair):
                console.rule(f"pair {i}: prompt (masked) + {side} (trained)")
                view = inspect.debug_text(enc, tok) if debug_text_only else inspect.debug_tokens(enc, tok)
                console.print(view, highlight=False, soft_wrap=True)
    if dump is not None:
        n = write_pair_dump(iter_pairs(prepared.train, len(prepared.train)), dump)
        console.print(f"wrote {n} training pairs to {dump}")
    print_pair_summary(prepared, cfg.data, console)
    return prepared


def write_pair_dump(pairs: Iterator[dict[str, list[int]]], path: Path) -> int:
    """Every pair as one JSON line (prompt_ids, chosen_ids, rejected_ids); temp file, then rename."""
    import json
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for pair in pairs:
                f.write(json.dumps(pair) + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def print_pair_summary(prepared: PreparedRows, data: DataConfig, console: Console) -> None:
    s = prepared.summary
    for label, p in (("train", s.train), ("test_datasets", s.test)):
        if p is None:
            continue
        drops = "".join(f", {n:,} dropped ({reason})" for reason, n in p.dropped.items())
        cut = f", {p.truncated:,} truncated" if p.truncated else ""
        console.print(f"{label}: {p.rows_in:,} pairs read, {p.rows_out:,} kept{drops}{cut}; {p.tokens:,} tokens, "
                      f"{p.trainable:,} in chosen/rejected", highlight=False)
        if p.zero_trainable:
            console.print(f"[yellow]warning:[/yellow] {p.zero_trainable} {label} pairs have chosen == rejected "
                          f"(nothing to learn from them), e.g. {', '.join(p.zero_trainable_rows)}", highlight=False)
    where = "from cache" if s.cached else "prepared"
    console.print(f"train pairs: {s.train_rows:,}, eval pairs: {s.eval_rows:,} ({where} in {s.seconds:.2f} s → "
                  f"{s.cache_path}; sequence_len {data.sequence_len})", highlight=False)
