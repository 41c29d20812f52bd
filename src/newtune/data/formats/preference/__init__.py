"""PREFERENCE_FORMATS: the `type:` names of `rl:` datasets, each a function from a row to a Pair.

The prompt/chosen/rejected strings are those of axolotl 0.21.0's prompt_strategies/dpo for the same
rows; tokenizing them is data/preference.py's job (as TRL's DPO trainer does it).
"""

from __future__ import annotations

from newtune.data.formats.preference import chatml, passthrough
from newtune.data.formats.preference.pair import PairFormat

PREFERENCE_FORMATS: dict[str, PairFormat] = {
    **chatml.TYPES,
    "passthrough": PairFormat(passthrough.to_pair, "rows that already hold prompt, chosen and rejected strings"),
}
