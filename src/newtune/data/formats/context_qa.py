"""`type: context_qa` (+ `.load_v2`, `.load_404`): answer a question from an article (axolotl 0.21.0).

- `context_qa`: article, question, answer; chat style with a "use the context" system prompt.
- `.load_v2`: context, question, answer as "Context: ...\\nQuestion: ...\\n" → "Answer: ...", no system.
- `.load_404`: article, unanswerable_question → a fixed "the context does not say" answer.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import prompt_response
from newtune.data.styles import Prompter, PromptStyle, style
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

CONTEXT_SYSTEM = "Use the following contextual information to concisely answer the question.\n"
NOT_IN_CONTEXT = (
    "The context provided does not contain any information about your inquiry. "
    "Therefore, I'm unable to answer your question based on the given context."
)
V2 = Prompter(PromptStyle("{instruction}\n{input}", "{instruction}", "{system}"))


def _context() -> Prompter:
    return Prompter(style("chat"), CONTEXT_SYSTEM, CONTEXT_SYSTEM)


def context_qa(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    prompt = _context().prompt(rf.need(row, "article") + "\n===\n" + rf.need(row, "question"))
    return prompt_response(prompt, rf.nullable(row, "answer"), ctx)


def load_v2(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    prompt = V2.prompt("Context: " + rf.need(row, "context") + "\nQuestion: " + rf.need(row, "question") + "\n")
    return prompt_response(prompt, "Answer: " + rf.need(row, "answer"), ctx)


def load_404(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    prompt = _context().prompt(rf.need(row, "article") + "\n===\n" + rf.need(row, "unanswerable_question"))
    return prompt_response(prompt, NOT_IN_CONTEXT, ctx)


TYPES = {
    "context_qa": Format(context_qa, "segments", FormatOptions, "article/question/answer, chat style", prompt_field="article"),
    "context_qa.load_v2": Format(load_v2, "segments", FormatOptions, "context/question/answer, plain Context:/Question:/Answer:",
                                 prompt_field="context"),
    "context_qa.load_404": Format(load_404, "segments", FormatOptions, "article/unanswerable_question → fixed refusal", prompt_field="article"),
}
