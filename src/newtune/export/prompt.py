"""A user's prompt (or chat history) → input ids, built exactly as training built its prompts."""

from __future__ import annotations

import dataclasses
from typing import Any

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.types import Tokenizer


@dataclasses.dataclass
class Turn:
    role: str
    content: str


class PromptRow(dict):
    """A row holding only the prompt: the prompt field has the text, every other field is empty."""

    def __init__(self, field: str, prompt: str) -> None:
        super().__init__({field: prompt})

    def __missing__(self, key: str) -> str:
        return ""

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


def prompt_ids(fmt: dict, history: list[Turn], tokenizer: Tokenizer, data: DataConfig) -> list[int]:
    """Input ids for generating the next assistant answer after `history` (ending with a user turn)."""
    if fmt["kind"] == "chat":
        msgs = [{"role": t.role, "content": t.content} for t in history]
        if fmt.get("system") and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": fmt["system"]})
        kwargs = {"add_generation_prompt": True, **(data.chat_template_kwargs or {})}  # as training renders
        text = tokenizer.apply_chat_template(msgs, tokenize=False, **kwargs)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    if fmt["kind"] == "instruct":
        return instruct_ids(fmt, history, tokenizer, data)
    if fmt["kind"] == "pair":  # preference training: the type's prompt for the last user turn, tokenized as TRL does
        from newtune.data.formats.preference import PREFERENCE_FORMATS

        user = next(t.content for t in reversed(history) if t.role == "user")
        prompt = PREFERENCE_FORMATS[fmt["type"]].prompt(user)
        return tokenizer(prompt)["input_ids"]
    prompt = "".join(t.content for t in history if t.role != "system")
    return tokenizer(prompt, add_special_tokens=True)["input_ids"]


def instruct_ids(fmt: dict, history: list[Turn], tokenizer: Tokenizer, data: DataConfig) -> list[int]:
    """The dataset's format renders each user turn as a row with no answer; earlier answers follow
    their prompts, each piece tokenized alone as in training."""
    from newtune.data.encode import encode_pieces
    from newtune.data.options import format_of, options_of
    from newtune.data.rowcodec import format_context
    from newtune.data.types import Segment

    ds = DatasetConfig.model_validate({"path": "-", **fmt["dataset"]})
    ctx = dataclasses.replace(format_context(data, tokenizer), train_on_inputs=False)
    fmt_fn, opts = format_of(ds).fn, options_of(ds)
    segments: list[Segment] = []
    for turn in history:
        if turn.role == "user":
            rendered = fmt_fn(PromptRow(fmt["prompt_field"], turn.content), opts, ctx)
            segments += [s for s in rendered if not s.train]
        elif turn.role == "assistant":
            segments += [Segment(turn.content, True)]
            if tokenizer.eos_token:
                segments.append(Segment(tokenizer.eos_token, True))
    return encode_pieces([segments], tokenizer)[0]["input_ids"]
