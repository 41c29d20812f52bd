"""`type: metharme`: prompt → generation, with three EOS tokens after the generation (axolotl 0.21.0).

The prompt text is used as is (it holds its own <|system|>/<|user|>/<|model|> markers).
axolotl's metharme tokenizer does not skip empty text: with a BOS-adding tokenizer an empty prompt
is just BOS, and an empty generation still gets its three EOS. (With train_on_inputs true and a
tokenizer without BOS, axolotl fails on an empty prompt; newtune encodes the generation.)
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import bos, eos, response_text
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

EOS_COUNT = 3


def metharme(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    prompt, generation = rf.nullable(row, "prompt"), rf.nullable(row, "generation")
    adds_bos = ctx.tokenizer.add_bos
    segs = [*bos(ctx), Segment(prompt, ctx.train_on_inputs)] if prompt or adds_bos else []
    generation = response_text(generation, ctx)
    if generation or adds_bos:
        segs += [Segment(generation, True), *eos(generation, ctx, EOS_COUNT)]
    return segs


TYPES = {"metharme": Format(metharme, "segments", FormatOptions, "prompt/generation, three EOS after the generation", prompt_field="prompt")}
