"""Preference dataset types (`rl:`): prompt/chosen/rejected strings equal axolotl 0.21.0's for the same rows.

The expected strings in preference_axolotl.json come from axolotl 0.21.0's own prompt_strategies/dpo
modules (see its "about" line).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newtune.config.data import DatasetConfig
from newtune.data.formats.preference import PREFERENCE_FORMATS
from newtune.data.preference import format_pair
from newtune.errors import DataError

GOLDEN = json.loads((Path(__file__).parent / "preference_axolotl.json").read_text())
CASES = sorted(GOLDEN["expected"])


def pair(type_name: str, row: dict):
    return format_pair(row, DatasetConfig(path="-", type=type_name), "rows.jsonl line 1")


@pytest.mark.parametrize("case", CASES)
def test_strings_equal_axolotl(case):
    type_name, index = case.split("/")
    row = GOLDEN["rows"][type_name.split(".")[1]][int(index)]
    got = pair(type_name, row)
    assert [got.prompt, got.chosen, got.rejected] == GOLDEN["expected"][case]


def test_every_chatml_and_llama3_type_has_a_golden_case():
    families = {n for n in PREFERENCE_FORMATS if n.startswith(("chatml.", "llama3."))}
    assert families == {c.split("/")[0] for c in CASES}


def test_intel_reads_as_a_person_expects():
    got = pair("chatml.intel", {"system": "You are kind.", "question": "2+2?", "chosen": "4", "rejected": "22"})
    assert got.prompt == "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert (got.chosen, got.rejected) == ("4<|im_end|>", "22<|im_end|>")


def test_bare_family_name_is_its_default():
    row = {"prompt": "Q", "chosen": "a", "rejected": "b"}
    assert pair("chatml", row) == pair("chatml.default", row)


def test_passthrough_keeps_the_strings():
    got = pair("passthrough", {"prompt": "P", "chosen": "C", "rejected": "R", "extra": 1})
    assert (got.prompt, got.chosen, got.rejected) == ("P", "C", "R")


@pytest.mark.parametrize(("row", "problem"), [
    ({"question": "Q", "chosen": "", "rejected": "b"}, "empty chosen"),
    ({"question": "Q", "chosen": "a", "rejected": ""}, "empty rejected"),
    ({"question": "Q", "chosen": "a"}, "missing field 'rejected' (row has: question, chosen)"),
    ({"question": None, "chosen": "a", "rejected": "b"}, "missing field 'question'"),
    ({"question": "Q", "chosen": 3, "rejected": "b"}, "field 'chosen' must be a string"),
])
def test_bad_rows_name_the_row_and_field(row, problem):
    with pytest.raises(DataError) as e:
        pair("chatml.intel", row)
    assert "rows.jsonl line 1 (chatml.intel)" in str(e.value)
    assert problem in str(e.value)


def test_empty_prompt_of_passthrough_is_refused():
    with pytest.raises(DataError, match="empty prompt"):
        pair("passthrough", {"prompt": "", "chosen": "a", "rejected": "b"})
