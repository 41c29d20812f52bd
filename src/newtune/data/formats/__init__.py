"""FORMATS: the one dict from every `type:` name to its Format."""

from __future__ import annotations

from newtune.data.formats import (
    alpaca,
    alpaca_chat,
    alpaca_w_system,
    chat_template,
    completion,
    concisechoice,
    context_qa,
    creative_acr,
    explainchoice,
    gpteacher,
    input_output,
    jeopardy,
    metharme,
    oasst,
    pygmalion,
    reflection,
    sharegpt,
    summarizetldr,
    user_defined,
)
from newtune.data.types import Format

FORMATS: dict[str, Format] = {
    "completion": Format(completion.to_segments, "segments", "raw text (field: text), all trained, long rows split"),
    "input_output": Format(input_output.to_segments, "segments", "text segments, each with label true/false"),
    "chat_template": Format(chat_template.to_conversation, "conversation", "messages rendered by a Jinja chat template"),
    "chat_template.default": Format(chat_template.to_conversation, "conversation", "same as chat_template"),
    "sharegpt": Format(sharegpt.to_conversation, "conversation", "conversations of {from, value} turns"),
    "sharegpt.load_role": Format(sharegpt.load_role, "conversation", "conversations of {role, value} turns"),
    "sharegpt.load_guanaco": Format(sharegpt.load_guanaco, "conversation", "conversations of {role, text} turns"),
    "sharegpt_jokes": Format(sharegpt.jokes, "conversation", "title, text, explanation → a joke chat"),
    # instruct-style types: each module's TYPES lists its names (dotted loaders included)
    **alpaca.TYPES, **alpaca_chat.TYPES, **alpaca_w_system.TYPES, **jeopardy.TYPES, **oasst.TYPES,
    **gpteacher.TYPES, **reflection.TYPES, **explainchoice.TYPES, **concisechoice.TYPES, **summarizetldr.TYPES,
    **context_qa.TYPES, **creative_acr.TYPES, **metharme.TYPES, **pygmalion.TYPES, **user_defined.TYPES,
}
