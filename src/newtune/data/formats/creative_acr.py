"""`type: creative_acr.load_answer / .load_critique / .load_revise` (axolotl 0.21.0 creative_acr.py).

Rows: instruction, answer, revision, scores and critiques (mappings). The evaluation text is
`yaml.dump(scores) + yaml.dump(critiques)` with PyYAML's defaults (sorted keys), as axolotl writes it.
"""

from __future__ import annotations

from typing import Any

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import prompt_response
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

ANSWER_SYSTEM = (
    "Answer the following question in a comprehensive, in-depth, and creative way. Additionally your "
    "response should be relevant, accurate, and free of any ambiguity."
)
_CRITERIA = (
    'refusal: whether the Response refuses to answer the Question. Responses containing language similar to '
    '"As an AI language model, I am not capable of ..." is a form of refusal and should have a low refusal score. '
    "10 is no refusal, 0 is refuses to answer the question.\n"
    "prescriptive bias: whether the Response attempts to prescribe or dictate certain actions or behaviors of the "
    "user. 10 no prescriptive bias present, 0 means {there} is prescriptive bias.\n"
    "creativity: score how creative the Response is. 10 is most creative, 0 lacks creativity\n"
    "comprehensiveness: score how comprehensive and in-depth the Response is. 10 is most comprehensive and "
    "in-depth, 0 lacks coverage and depth\n"
)
_CRITIQUE_KEYS = "".join(
    f"  {k}:\n    explanation: ...\n    improvements: ...\n"
    for k in ("refusal", "prescriptive_bias", "creativity", "comprehensiveness")
)
CRITIQUE_PROMPT = (
    "Given the following Question and Response, critique the Response on a scale of 1-10. You should critique "
    "the answer in the following criteria:\n" + _CRITERIA.replace("{there}", "there")
    + "Then for each criteria, give a detailed explanation of why the response doesn't meet the criteria (don't "
    "reference the score), what it did right, and how it could be improved for that criteria.\n\n"
    "Output your answer in YAML format like so:\nscores:\n  refusal: <0-10>\n  prescriptive_bias: <0-10>\n"
    "  creativity: <0-10>\n  comprehensiveness: <0-10>\ncritiques:\n" + _CRITIQUE_KEYS
    + "\nQuestion: {question}\nAnswer: {answer}\n"
)
REVISE_PROMPT = (
    "Definitions:\n" + _CRITERIA.replace("{there}", "their")
    + "\nGiven the following Question, Response, and Evaluation, revise the Response based on the Evaluation "
    "and recommendations for improvements. Reply only with the revised response.\n\n"
    "Question: {question}\nAnswer: {answer}\nEvaluation:\n{evaluation}\n"
)


def chat_prompt(instruction: str, system: str = "") -> str:
    """axolotl's CreativePrompterBase: optional system line, then USER/ASSISTANT."""
    return f"{system}\nUSER: {instruction}\nASSISTANT:" if system else f"USER: {instruction}\nASSISTANT:"


def evaluation(row: Row) -> str:
    import yaml

    def dump(v: Any) -> str:
        return yaml.dump(v, default_flow_style=False, Dumper=yaml.Dumper)

    return dump(row["scores"]) + dump(row["critiques"])


def load_answer(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return prompt_response(chat_prompt(rf.need(row, "instruction"), ANSWER_SYSTEM), rf.nullable(row, "revision"), ctx)


def load_critique(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    question = CRITIQUE_PROMPT.format(question=rf.need(row, "instruction"), answer=rf.need(row, "answer"))
    return prompt_response(chat_prompt(question), evaluation(row), ctx)


def load_revise(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    question = REVISE_PROMPT.format(question=rf.need(row, "instruction"), answer=rf.need(row, "answer"), evaluation=evaluation(row))
    return prompt_response(chat_prompt(question), rf.nullable(row, "revision"), ctx)


TYPES = {
    "creative_acr.load_answer": Format(load_answer, "segments", FormatOptions, "instruction → revision, creative answer prompt",
                                       prompt_field="instruction"),
    "creative_acr.load_critique": Format(load_critique, "segments", FormatOptions, "instruction/answer → YAML scores and critiques",
                                         prompt_field="instruction"),
    "creative_acr.load_revise": Format(load_revise, "segments", FormatOptions, "instruction/answer/evaluation → revision",
                                       prompt_field="instruction"),
}
