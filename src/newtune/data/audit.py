"""Masking audit beyond axolotl: warn when the text that ends a trained turn is not trained.

axolotl 0.21.0 trains the EOS token after each trained turn by default. When a template ends its turns with
another token (Gemma's <end_of_turn>, whose tokenizer's EOS <eos> the template never writes), nothing after
the answer is trained and the model never learns to stop (axolotl issue #3754). newtune keeps axolotl's
labels (parity is the default) and says, once per dataset, which key fixes it: `eot_tokens` (plus `tokens:`
when the marker is not one token in this tokenizer).
"""

from __future__ import annotations

from typing import Any

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.formats import FORMATS
from newtune.data.options import options_of
from newtune.data.types import Tokenizer


def turn_end_warnings(data: DataConfig, tokenizer: Tokenizer) -> list[str]:
    """One message per chat dataset whose first row trains a turn and leaves its ending untrained."""
    from newtune.data.rowcodec import format_context

    ctx = format_context(data, tokenizer)
    out = []
    for label, entries in (("datasets", data.datasets), ("test_datasets", data.test_datasets or [])):
        for i, ds in enumerate(entries):
            msg = turn_end_audit(ds, data, tokenizer, ctx)
            if msg:
                out.append(f"{label}[{i}]: {msg}")
    return out


def turn_end_audit(ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer, ctx: Any) -> str | None:
    fmt = FORMATS.get(ds.type_name) if ds.type is not None else None
    if fmt is None or fmt.kind != "conversation":
        return None  # not a chat template
    opts = options_of(ds)
    if "none" in (getattr(opts, "train_on_eos", None), getattr(opts, "train_on_eot", None)):
        return None  # the user chose to leave turn endings untrained
    from newtune.data.chat import chat_setup, render_segments
    from newtune.data.sources import iter_batches

    try:
        batch = next(iter(iter_batches(ds, batch_size=1)), None)
        if batch is None or not batch.rows:
            return None
        conv = fmt.fn(batch.rows[0], opts, ctx)
        segs = render_segments(conv, ds, data, tokenizer)
    except Exception:  # a row the format refuses: preprocessing itself names it
        return None
    rules = chat_setup(ds, data, tokenizer).rules
    ending = untrained_ending(segs, [m for m in conv.messages if m.content and rules.message_trained(m)])
    if ending is None:
        return None
    ids = tokenizer.encode(ending, add_special_tokens=False)
    fix = f"eot_tokens: [{ending!r}]"
    if len(ids) > 1:
        fix = f"tokens: [{ending!r}] and {fix} ({ending!r} is {len(ids)} tokens in this tokenizer)"
    return (f"the text that ends a trained turn, {ending!r}, is not trained (the model will not learn to stop); "
            f"set {fix}, which trains it after each trained turn (train_on_eot, default: train_on_eos)")


def untrained_ending(segs: list[Any], trained: list[Any]) -> str | None:
    """The template text right after the last trained message when none of it is trained, else None."""
    last = trained[-1] if trained else None
    for k in range(len(segs) - 1, -1, -1):
        if not segs[k].train:
            continue
        if last is None or not isinstance(last.content, str) or not segs[k].text.endswith(last.content):
            return None  # something after the content (EOS/EOT) is trained, or not the message's own text
        after = segs[k + 1].text if k + 1 < len(segs) else ""
        ending = after.split("\n", 1)[0].strip()
        return ending or None
    return None
