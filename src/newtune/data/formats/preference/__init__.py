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

# axolotl 0.21.0's other DPO types: refused as "not supported yet" (never read as a supervised type).
PREFERENCE_LATER = ("chat_template", "chat_template.default", "chat_template.argilla_chat", "user_defined",
                    "user_defined.default", "zephyr.nectar")
