"""FORMATS: the one dict from every `type:` name to its Format (function, kind, Options, doc)."""

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
    orcamini,
    pretokenized,
    pygmalion,
    reflection,
    sharegpt,
    summarizetldr,
    user_defined,
)
from newtune.data.types import Format, FormatOptions

CHAT = chat_template.Options
FORMATS: dict[str, Format] = {
    "completion": Format(completion.to_segments, "segments", completion.Options,
                         "raw text (field: text), all trained, long rows split"),
    "input_output": Format(input_output.to_segments, "segments", FormatOptions,
                           "text segments, each with label true/false"),
    "chat_template": Format(chat_template.to_conversation, "conversation", CHAT,
                            "messages rendered by a Jinja chat template"),
    "chat_template.default": Format(chat_template.to_conversation, "conversation", CHAT, "same as chat_template"),
    "sharegpt": Format(sharegpt.to_conversation, "conversation", sharegpt.FromValueOptions,
                       "conversations of {from, value} turns"),
    "sharegpt.load_role": Format(sharegpt.load_role, "conversation", sharegpt.Options,
                                 "conversations of {role, value} turns"),
    "sharegpt.load_guanaco": Format(sharegpt.load_guanaco, "conversation", sharegpt.Options,
                                    "conversations of {role, text} turns"),
    "sharegpt_jokes": Format(sharegpt.jokes, "conversation", sharegpt.Options, "title, text, explanation → a joke chat"),
    # instruct-style types: each module's TYPES lists its names (dotted loaders included)
    **alpaca.TYPES, **alpaca_chat.TYPES, **alpaca_w_system.TYPES, **jeopardy.TYPES, **oasst.TYPES,
    **gpteacher.TYPES, **reflection.TYPES, **explainchoice.TYPES, **concisechoice.TYPES, **summarizetldr.TYPES,
    **context_qa.TYPES, **creative_acr.TYPES, **metharme.TYPES, **pygmalion.TYPES, **user_defined.TYPES,
    **orcamini.TYPES,
}
# Rows given with no `type:` hold input_ids (and labels) already.
PRETOKENIZED = Format(pretokenized.to_tokens, "tokens", FormatOptions, "rows with input_ids (and labels), no type:")
