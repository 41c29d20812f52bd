"""`type: orcamini`: Orca Mini v2's layout over OpenOrca's fields (question, response, system_prompt).

axolotl 0.21.0 prompt_strategies/orcamini.py: the same fields and tokenization as
`alpaca_w_system.load_open_orca` (prompt, then response + EOS), with "### System:" always present and
"### User:" / "### Response:" turns. Where axolotl would write a null system prompt as the text "None",
a null system prompt is empty here.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import prompt_response
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

LAYOUT = "### System:\n{system}\n\n### User:\n{instruction}\n\n### Response:\n"


def to_segments(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    prompt = LAYOUT.format(system=rf.nullable(row, "system_prompt"), instruction=rf.need(row, "question"))
    return prompt_response(prompt, rf.nullable(row, "response"), ctx)


TYPES = {
    "orcamini": Format(to_segments, "segments", FormatOptions,
                       "Orca Mini v2: question/response/system_prompt as ### System/User/Response", prompt_field="question"),
}
