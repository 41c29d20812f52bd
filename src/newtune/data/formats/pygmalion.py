"""`type: pygmalion`: conversations of {role: system|human|bot, value} (axolotl 0.21.0 pygmalion.py).

Each turn is tokenized on its own: system as "<|system|>Persona: ..." with BOS, human as
"<|user|> ...", bot as "<|model|> ..." plus EOS. Only bot text and its EOS train; the "<|model|>"
prefix does not; train_on_inputs is ignored, as in axolotl. A trailing "\\n<START>" is cut from the
system text. axolotl skips unknown roles with a warning (and then writes mismatched labels); newtune
raises an error instead.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import eos
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment
from newtune.errors import DataError


def turn_piece(role: str, value: str, ctx: FormatContext) -> list[Segment]:
    tok = ctx.tokenizer
    message = value
    if role == "system":
        if message.endswith("\n<START>"):
            message = message[: -len("\n<START>")]
        start = [Segment(tok.bos_token, False)] if tok.add_bos and tok.bos_token else []
        return [*start, Segment("<|system|>Persona: " + message.strip(), False)]
    if role == "human":
        return [Segment("<|user|> " + message.strip(), False)]
    if role == "bot":
        body = " " + message.strip()
        return [Segment("<|model|>", False), Segment(body, True), *eos(body, ctx)]
    raise DataError("conversations", f"unknown pygmalion role '{role}'", "roles are system, human and bot")


def pygmalion(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[list[Segment]]:
    pieces = []
    for i, turn in enumerate(rf.items(row, "conversations")):
        where = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise rf.wrong_type(where, turn, "an object with role and value")
        pieces.append(turn_piece(rf.need(turn, "role", where), rf.opt(turn, "value", where), ctx))
    return pieces


TYPES = {"pygmalion": Format(pygmalion, "pieces", FormatOptions, "conversations of system/human/bot turns")}
