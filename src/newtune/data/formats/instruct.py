"""How axolotl 0.21.0 tokenizes instruct-style rows, as Segments; shared by the alpaca family.

axolotl's InstructionPromptTokenizingStrategy tokenizes the prompt and the response separately:
the prompt with the tokenizer's BOS, the response without BOS and with EOS appended (unless the
response already ends with EOS). An empty response gives no tokens at all, not even EOS; we keep
that quirk. One Segment per separately tokenized piece keeps SentencePiece tokens identical.

Difference, documented: axolotl truncates each piece at sequence_len tokens; newtune does not, so
such rows stay longer than sequence_len and follow `excess_length_strategy`. axolotl fails
(KeyError 'labels') on an empty prompt with train_on_inputs true; newtune encodes the response.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from newtune.data.types import FormatContext, FormatOptions, Segment


def text(value: Any) -> str:
    """A row value as text; a missing or null field is empty (axolotl tests fields for truthiness)."""
    return "" if value is None else str(value)


def bos(ctx: FormatContext) -> list[Segment]:
    """The BOS the tokenizer would add to a piece, written out (encode uses add_special_tokens=False)."""
    tok = ctx.tokenizer
    return [Segment(tok.bos_token, ctx.train_on_inputs)] if tok.add_bos and tok.bos_token else []


def response_text(response: str, ctx: FormatContext) -> str:
    """The response as axolotl keeps it: a leading BOS token is stripped once."""
    tok = ctx.tokenizer
    if not tok.add_bos and tok.bos_token and response.startswith(tok.bos_token):
        return response[len(tok.bos_token) :]  # axolotl strips a BOS the text itself begins with
    return response


def eos(text_so_far: str, ctx: FormatContext, count: int = 1) -> list[Segment]:
    """`count` trained EOS tokens, one fewer when the text already ends with EOS."""
    token = ctx.tokenizer.eos_token
    if not token:
        return []
    if text_so_far.endswith(token):
        count -= 1
    return [Segment(token, True)] * max(count, 0)


def prompt_response(prompt: str | tuple[str, ...], response: str, ctx: FormatContext) -> list[Segment]:
    """Prompt (BOS first; trained only with train_on_inputs) then response and EOS (trained).

    `prompt` may come as parts (Prompter.prompt_parts): the same text, which the encoder may tokenize by parts.
    """
    if isinstance(prompt, tuple):
        segs = [*bos(ctx), Segment.of_parts(prompt, ctx.train_on_inputs)] if prompt else []
    else:
        segs = [*bos(ctx), Segment(prompt, ctx.train_on_inputs)] if prompt else []
    response = response_text(response, ctx) if response else ""
    if response:
        segs += [Segment(response, True), *eos(response, ctx)]
    return segs


class StyledOptions(FormatOptions):
    """Options of the types that take a prompt style after ':' in `type:` (`alpaca:chat`), as axolotl's
    DATASET_HANDLERS do. The style is the only one they read, and it comes from `type:` itself."""

    FROM_TYPE = ("style",)
    style: str | None = Field(None, description="The prompt style after ':' in type: (instruct, chat, chatml, phi).")

    @classmethod
    def from_type(cls, type_value: Any) -> dict[str, Any]:
        return {"style": type_value.partition(":")[2] or None} if isinstance(type_value, str) else {}
