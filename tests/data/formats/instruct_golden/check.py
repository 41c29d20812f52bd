"""Compare newtune's encoding of rows.py's cases with axolotl 0.21.0's ids (axolotl_0.21.0.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from instruct_golden.rows import CASES

from newtune.config.data import DatasetConfig
from newtune.data.rowcodec import encode_row
from newtune.data.types import IGNORE, Encoded

AXOLOTL_VERSION = "0.21.0"
CASE_NAMES = [name for name, _, _ in CASES]


@cache
def golden() -> dict:
    data = json.loads((Path(__file__).parent / f"axolotl_{AXOLOTL_VERSION}.json").read_text())
    assert data["axolotl"] == AXOLOTL_VERSION
    return data["cases"]


def dataset(case: str) -> DatasetConfig:
    keys = next(k for name, k, _ in CASES if name == case)
    return DatasetConfig(path="-", **keys)


def rows(case: str) -> list[dict]:
    return next(r for name, _, r in CASES if name == case)


def assert_matches_axolotl(case: str, smol_tok: Any, mistral_tok: Any) -> None:
    """Every row of `case`, on both tokenizers, with train_on_inputs false and true: ids and labels equal axolotl's."""
    ds = dataset(case)
    for tok_name, tok in (("smollm2", smol_tok), ("mistral-v1", mistral_tok)):
        expected = golden()[case][tok_name]
        assert len(expected) == len(rows(case))
        for i, (row, want) in enumerate(zip(rows(case), expected, strict=True)):
            for train_on_inputs, label_key in ((False, "labels"), (True, "labels_train_on_inputs")):
                enc = encode_row(ds, row, tok, train_on_inputs=train_on_inputs)
                where = f"{case} row {i} on {tok_name}, train_on_inputs={train_on_inputs}"
                assert enc["input_ids"] == want["input_ids"], where
                assert enc["labels"] == want[label_key], where


def masked_and_trained(enc: Encoded, tok: Any) -> tuple[str, str]:
    """The decoded text of the masked tokens and of the trained tokens."""
    masked = [t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab == IGNORE]
    trained = [t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != IGNORE]
    return tok.decode(masked), tok.decode(trained)
