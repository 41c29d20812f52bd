"""`type: concisechoice`: multiple choice, concise answer, always chat turns (axolotl 0.21.0).

axolotl's MultipleChoiceConcisePrompter ignores the style after ':' and puts its system prompt
before the turn without a "SYSTEM:" prefix; newtune accepts the suffix and ignores it the same way.
"""

from __future__ import annotations

from newtune.data.formats.explainchoice import choice_fields
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import Prompter, PromptStyle
from newtune.data.types import Format, FormatContext, Row, Segment

CONCISE_SYSTEM = "Choose the answer that best answers the question. Be concise in your response.\n\n"
CONCISE = Prompter(
    PromptStyle("USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "{system}"),
    CONCISE_SYSTEM, CONCISE_SYSTEM,
)


def concisechoice(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    question, choices, answer = choice_fields(row)
    return prompt_response(CONCISE.prompt_parts(question, choices), answer, ctx)


TYPES = {"concisechoice": Format(concisechoice, "segments", StyledOptions, "question/choices/solution, concise chat prompt", prompt_field="question")}
