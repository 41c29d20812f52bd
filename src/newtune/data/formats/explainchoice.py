"""`type: explainchoice`: multiple choice answered with an explanation (axolotl 0.21.0).

question, choices (a list, rendered as `- "choice"` lines in the input), and `solution` when the row
has that field, else `explanation`.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import Prompter, style
from newtune.data.types import Format, FormatContext, Row, Segment

EXPLAIN_SYSTEM = "Choose the answer that best answers the question. Explain your reasoning.\n"


def choices_text(choices: list[str]) -> str:
    return "\n".join(f'- "{c}"' for c in choices)


def choice_fields(row: Row) -> tuple[str, str, str]:
    """question, rendered choices, and the solution (or explanation)."""
    answer = rf.nullable(row, "solution") if "solution" in row else rf.nullable(row, "explanation")
    choices = rf.items(row, "choices")
    for i, c in enumerate(choices):
        if not isinstance(c, str):
            raise rf.wrong_type(f"choices[{i}]", c, "text")
    return rf.need(row, "question"), choices_text(choices), answer


def explainchoice(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    question, choices, answer = choice_fields(row)
    prompter = Prompter(style(opts.style or "instruct"), EXPLAIN_SYSTEM, EXPLAIN_SYSTEM)
    return prompt_response(prompter.prompt_parts(question, choices), answer, ctx)


TYPES = {"explainchoice": Format(explainchoice, "segments", StyledOptions, "question/choices/solution; the style after ':' (default instruct)",
                                 prompt_field="question")}
