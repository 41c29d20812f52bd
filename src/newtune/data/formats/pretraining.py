"""`pretraining_dataset:` streamed raw text → rows of exactly sequence_len tokens, as axolotl 0.21 builds them.

Each text: the tokenizer's own specials, at most sequence_len - 2 tokens, then EOS (trained) and PAD
(masked, attention 0). Texts are concatenated greedily into rows; a text that does not fit closes the
row, which is padded to sequence_len. Unlike axolotl (which restarts per map batch), one buffer runs
across the whole stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from newtune.config.data import DataConfig, PretrainingDataset
from newtune.data.types import IGNORE, Tokenizer
from newtune.errors import DataError

BATCH = 256


def stream_texts(entry: PretrainingDataset) -> Iterator[tuple[str, str]]:
    """(text, where) from one pretraining_dataset entry, after `skip` rows; local files or a streamed hub dataset."""
    from newtune.config.data import DatasetConfig
    from newtune.data.sources import iter_batches, local_files

    ds = DatasetConfig(path=entry.path, data_files=entry.data_files, split=entry.split, name=entry.name,
                       trust_remote_code=entry.trust_remote_code)
    if local_files(ds) is not None:
        rows = ((row, where) for batch in iter_batches(ds) for row, where in zip(batch.rows, batch.where, strict=True))
    else:
        rows = _hub_stream(entry)
    for row, where in islice(rows, entry.skip, None):
        text = row.get(entry.text_column)
        if text is None:  # absent, or null (a key other rows have)
            fields = ", ".join(k for k, v in row.items() if v is not None)
            raise DataError(where, f"missing field '{entry.text_column}' (row has: {fields})",
                            "set text_column on the pretraining_dataset entry")
        if not isinstance(text, str):
            raise DataError(where, f"field '{entry.text_column}' must be text, not {type(text).__name__}")
        yield text, where


def _hub_stream(entry: Any) -> Iterator[tuple[dict, str]]:
    import os

    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataError(entry.path, "not a local path, and the dataset hub is unreachable (offline mode is set)",
                        "download the dataset elsewhere and set pretraining_dataset path: to the local file")
    import datasets

    from newtune.data.sources import hub_token

    stream = datasets.load_dataset(entry.path, name=entry.name, split=entry.split, data_files=entry.data_files,
                                   streaming=True, **hub_token(entry))
    for i, row in enumerate(stream):
        yield row, f"{entry.path} row {i}"


def pack_stream(texts: Iterator[str], tokenizer: Tokenizer, sequence_len: int) -> Iterator[dict[str, list[int]]]:
    """Tokenized texts greedily concatenated into padded rows of sequence_len (input_ids, labels, attention_mask)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if pad is None:
        pad = eos
    ids: list[int] = []
    labels: list[int] = []
    mask: list[int] = []
    while True:
        batch = list(islice(texts, BATCH))
        if not batch:
            break
        for t in tokenizer(batch, add_special_tokens=True)["input_ids"]:
            t = t[: sequence_len - 2]
            doc_ids, doc_labels, doc_mask = t + [eos, pad], t + [eos, IGNORE], [1] * (len(t) + 1) + [0]
            if ids and len(ids) + len(doc_ids) > sequence_len:
                yield _padded(ids, labels, mask, sequence_len, pad)
                ids, labels, mask = [], [], []
            ids += doc_ids
            labels += doc_labels
            mask += doc_mask
            if len(ids) == sequence_len:
                yield {"input_ids": ids, "labels": labels, "attention_mask": mask}
                ids, labels, mask = [], [], []
    if ids:
        yield _padded(ids, labels, mask, sequence_len, pad)


def _padded(ids: list[int], labels: list[int], mask: list[int], n: int, pad: int) -> dict[str, list[int]]:
    k = n - len(ids)
    return {"input_ids": ids + [pad] * k, "labels": labels + [IGNORE] * k, "attention_mask": mask + [0] * k}


def prepare_stream(data: DataConfig, tokenizer: Tokenizer) -> Iterator[dict[str, list[int]]]:
    """Endless-enough iterator of training rows from every pretraining_dataset entry, in order."""
    texts = (text for entry in data.pretraining_dataset or [] for text, _ in stream_texts(entry))
    return pack_stream(texts, tokenizer, data.sequence_len)
