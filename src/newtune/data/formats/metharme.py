"""`type: metharme`: prompt → generation, with three EOS tokens after the generation (axolotl 0.21.0).

The prompt text is used as is (it holds its own <|system|>/<|user|>/<|model|> markers).
axolotl's metharme tokenizer does not skip empty text: with a BOS-adding tokenizer an empty prompt
is just BOS, and an empty generation still gets its three EOS. (With train_on_inputs true and a
tokenizer without BOS, axolotl fails on an empty prompt; newtune encodes the generation.)
"""

from __future__ import annotations

from newtune.config.data import DatasetConfig
from newtune.data.formats.instruct import bos, eos, response_text, style_name, text
from newtune.data.types import Format, FormatContext, Row, Segment

EOS_COUNT = 3


def metharme(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    style_name(ds)
    prompt, generation = text(row["prompt"]), text(row["generation"])
    adds_bos = ctx.tokenizer.add_bos
    segs = [*bos(ctx), Segment(prompt, ctx.train_on_inputs)] if prompt or adds_bos else []
    generation = response_text(generation, ctx)
    if generation or adds_bos:
        segs += [Segment(generation, True), *eos(generation, ctx, EOS_COUNT)]
    return segs


TYPES = {"metharme": Format(metharme, "segments", "prompt/generation, three EOS after the generation")}
