"""ChatTemplate: render a Conversation once through its Jinja template and cut the text into Segments.

Each message's span is what axolotl's per-turn diff finds (the text that changes when that message is
replaced by a placeholder turn {role, content: SENTINEL}), found without a render per turn:

- plain messages (role and string content only): a render with every content replaced by the sentinel
  depends only on the roles, so its pieces are cached per role pattern; the row's one render must be
  exactly those pieces with the contents spliced in, which gives every span;
- otherwise (tool calls, extra fields, a template that reads the content): one more render with every
  needed message replaced by the placeholder, matched against the real render in order;
- if the template drops or repeats a placeholder, each message gets its own diff (one render each).

A trained message that appears nowhere in the render is an error. Unlike axolotl 0.21.0, no tokenizer
name is sniffed (it skips a first system turn when the tokenizer path contains "mistral"), and a message
whose span is empty has no EOT/EOS trained after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from newtune.config.data import NAMED_TEMPLATES, DataConfig, DatasetConfig
from newtune.data import train_on as train_rules
from newtune.data.jinja import compile_template, template_text
from newtune.data.options import options_of
from newtune.data.types import Conversation, Message, Segment, Tokenizer
from newtune.errors import DataError, ModelError

SENTINEL = "\ue000"  # a private-use character: never in template text, practically never in data
TEMPLATES_DIR = Path(__file__).parent / "templates"
GAP_CHARS = 64  # longest template text searched between a message and its EOT/EOS token


@cache
def named_template(name: str) -> str:
    """A template newtune ships (data/templates/<name>.jinja)."""
    return (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")


def _resolve_choice(choice: str | None, jinja: str | None, where: str, tokenizer: Tokenizer, top: str | None) -> str:
    """Template text for one `chat_template:` choice; `top` is the run-wide template (what the tokenizer's
    template becomes in axolotl when the top level sets one)."""
    if choice is None:
        choice = "jinja" if jinja else "tokenizer_default"
    if choice == "jinja":
        return template_text(jinja, f"{where}chat_template_jinja")
    if choice in NAMED_TEMPLATES:
        return named_template(choice)
    own = top if top is not None else getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):
        own = own.get("default")
    if choice == "tokenizer_default":
        if not own:
            raise ModelError(
                f"{where}chat_template", "chat_template is tokenizer_default but the tokenizer has no chat template",
                "set chat_template: chatml, or chat_template: jinja with chat_template_jinja",
            )
        return own
    fallback = choice.removeprefix("tokenizer_default_fallback_")
    return own or _resolve_choice(fallback, jinja, where, tokenizer, None)


def template_source(ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer) -> str:
    """The template for dataset `ds`: its own chat_template/_jinja win over the top level's, as in axolotl."""
    opts = options_of(ds)
    own = opts.own_template()  # a template the format's keys choose (sharegpt's `conversation:`)
    if own is not None:
        return named_template(own)
    top = None
    if data.chat_template is not None or data.chat_template_jinja:
        top = _resolve_choice(data.chat_template, data.chat_template_jinja, "", tokenizer, None)
    if opts.chat_template is not None or opts.chat_template_jinja:
        return _resolve_choice(opts.chat_template, opts.chat_template_jinja, "datasets[].", tokenizer, top)
    return top if top is not None else _resolve_choice("tokenizer_default", None, "", tokenizer, None)


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled template with the variables apply_chat_template passes (the special tokens, then the
    config's chat_template_kwargs, which win as they do in apply_chat_template)."""

    source: str
    compiled: Any
    context: dict[str, Any]
    skeletons: dict[tuple[tuple[str, bool], ...], list[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, source: str, tokenizer: Tokenizer, kwargs: dict[str, Any] | None = None) -> ChatTemplate:
        # compiled as apply_chat_template compiles it (data/jinja.py), so templates render the same text
        context = {"add_generation_prompt": False, **tokenizer.special_tokens_map, **(kwargs or {})}
        return cls(source, compile_template(source), context)

    def render(self, messages: list[dict[str, Any]], tools: Any = None, **kw: Any) -> str:
        try:
            # chat_template_kwargs may give `documents` (RAG templates) or `tools`; a row's own tools win, as in axolotl
            return self.compiled.render(**{"documents": None, **self.context, **kw, "messages": messages,
                                           "tools": tools or self.context.get("tools") or None})
        except Exception as e:  # a template error is the data's or the template's, never ours
            raise DataError("", f"the chat template failed on this row: {type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class ChatSetup:
    """Everything render_segments needs for one dataset, computed once."""

    template: ChatTemplate
    rules: train_rules.TrainOn
    eot_re: re.Pattern[str] | None
    eot_len: int  # longest EOT token text
    tokenizer: Tokenizer


_SETUPS: dict[tuple[int, int, int], tuple[DatasetConfig, DataConfig, Tokenizer, ChatSetup]] = {}


def chat_setup(ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer) -> ChatSetup:
    """Cached per (dataset entry, data config, tokenizer) object; the cache keeps them alive, so ids stay unique."""
    key = (id(ds), id(data), id(tokenizer))
    hit = _SETUPS.get(key)
    if hit is not None:
        return hit[3]
    source = template_source(ds, data, tokenizer)
    opts = options_of(ds)
    rules = train_rules.resolve(opts, data.train_on_inputs, data.eot_tokens, opts.role_aliases(), source, tokenizer,
                                opts.extra_trained_roles())
    eot_re = re.compile("|".join(map(re.escape, rules.eot_tokens))) if rules.eot_tokens else None
    eot_len = max(map(len, rules.eot_tokens), default=0)
    setup = ChatSetup(ChatTemplate.build(source, tokenizer, getattr(data, "chat_template_kwargs", None)), rules, eot_re,
                      eot_len, tokenizer)
    if len(_SETUPS) > 64:
        _SETUPS.clear()
    _SETUPS[key] = (ds, data, tokenizer, setup)
    return setup


def message_dict(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role}
    if m.content is not None:
        d["content"] = m.content
    if m.extra:
        d.update(m.extra)
    return d


def render_segments(conv: Conversation, ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer) -> list[Segment]:
    """Render `conv` once and return its text as Segments flagged trained or not."""
    setup = chat_setup(ds, data, tokenizer)
    rules = setup.rules
    msgs = conv.messages
    trained = [rules.message_trained(m) for m in msgs]
    need = [t or rules.locate_all for t in trained]
    real = [message_dict(m) for m in msgs]
    text, spans = locate(setup.template, msgs, real, need, conv.tools)
    intervals: list[tuple[int, int]] = []
    located: list[tuple[bool, int | None, int | None]] = []
    for i, m in enumerate(msgs):
        span = spans[i]
        if span is None:
            if trained[i] and m.content:
                raise DataError("", f"message {i} ({m.role}) does not appear in the text the chat template renders",
                                "check the template, or drop_system_message for templates without system turns")
            continue
        if trained[i]:
            intervals += _message_intervals(setup, m, span)
        located.append((trained[i], *_specials_after(setup, text, span[1])))
    for pos in train_rules.special_positions(located, rules):
        m = setup.eot_re.match(text, pos) if setup.eot_re else None
        intervals.append((pos, pos + (len(m.group(0)) if m else len(rules.eos_token or ""))))
    return _cut(text, intervals)


def _message_intervals(setup: ChatSetup, m: Message, span: tuple[int, int]) -> list[tuple[int, int]]:
    """The character ranges of a trained message: its whole span, or its training_detail tokens."""
    if not m.train_detail:
        return [span]
    if not isinstance(m.content, str):
        raise DataError("", "training_detail needs a string content")
    enc = setup.tokenizer(m.content, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    flags = detail_token_flags([s for s, _ in offsets], len(m.content), m.train_detail)
    base = span[0]
    return [(base + s, base + e) for f, (s, e) in zip(flags, offsets, strict=True) if f]


def detail_token_flags(starts: list[int], text_len: int, details: Any) -> list[bool]:
    """axolotl's training_detail rule on the content tokenized alone: spans (inclusive character offsets)
    widen to token boundaries; a token is trained when it lies inside a trained span."""
    n = len(starts)
    if n == 0:
        return []
    ends = [starts[i + 1] - 1 for i in range(n - 1)] + [text_len - 1]  # inclusive, as axolotl computes them
    spans = []
    for begin, end, train in details:
        bt = next((i for i in range(n) if starts[i] >= begin), n)
        if bt > 0 and ends[bt - 1] > begin:
            bt -= 1
        et = next((i for i in range(n - 1, -1, -1) if ends[i] <= end), -1)
        if et < n - 1 and starts[et + 1] < end:
            et += 1
        if bt <= et and train:
            spans.append((starts[bt], ends[et]))
    return [any(s >= b and e <= f for b, f in spans) for s, e in zip(starts, ends, strict=True)]


def _specials_after(setup: ChatSetup, text: str, end: int) -> tuple[int | None, int | None]:
    """Positions of the first EOT and first EOS token after `end`, if within EOT_MAX_GAP tokens."""
    eot = eos = None
    if setup.eot_re is not None:
        m = setup.eot_re.search(text, end, end + GAP_CHARS + setup.eot_len)
        eot = m.start() if m and _gap_ok(setup, text[end : m.start()]) else None
    eos_tok = setup.rules.eos_token
    if eos_tok:
        p = text.find(eos_tok, end, end + GAP_CHARS + len(eos_tok))
        eos = p if p >= 0 and _gap_ok(setup, text[end:p]) else None
    return eot, eos


def _gap_ok(setup: ChatSetup, gap: str) -> bool:
    """At most EOT_MAX_GAP tokens of template text between a message and its EOT/EOS (axolotl allows 3)."""
    if not gap:
        return True
    if len(gap) > GAP_CHARS:
        return False
    return len(setup.tokenizer(gap, add_special_tokens=False)["input_ids"]) <= train_rules.EOT_MAX_GAP


def _cut(text: str, intervals: list[tuple[int, int]]) -> list[Segment]:
    """Text → Segments: the intervals (merged where they touch or overlap) trained, the rest not."""
    segs: list[Segment] = []
    pos = 0
    for a, b in sorted(intervals):
        if b <= a or b <= pos:
            continue
        if a <= pos and segs and segs[-1].train:
            segs[-1] = Segment(segs[-1].text + text[pos:b], True)
        else:
            if a > pos:
                segs.append(Segment(text[pos:a], False))
            segs.append(Segment(text[max(a, pos):b], True))
        pos = b
    if pos < len(text) or not segs:
        segs.append(Segment(text[pos:], False))
    return segs


def locate(tpl: ChatTemplate, msgs: tuple[Message, ...], real: list[dict[str, Any]], need: list[bool],
           tools: Any) -> tuple[str, list[tuple[int, int] | None]]:
    """Render once and find the character span of each needed message (None: absent or not needed)."""
    text = tpl.render(real, tools)
    if tools is None and all(not m.extra and isinstance(m.content, str) for m in msgs):
        plain = _skeleton_spans(tpl, msgs, text)
        if plain is not None:
            return text, [s if n else None for s, n in zip(plain, need, strict=True)]
    spans: list[tuple[int, int] | None] = [None] * len(msgs)
    idx = [i for i, n in enumerate(need) if n and (msgs[i].content or msgs[i].extra)]
    if not idx:
        return text, spans
    dummy = list(real)
    for i in idx:
        dummy[i] = {"role": msgs[i].role, "content": SENTINEL}
    pieces = tpl.render(dummy, tools).split(SENTINEL)
    found = _match_pieces(text, pieces, [msgs[i] for i in idx]) if len(pieces) == len(idx) + 1 else None
    if found is None:
        found = [_diff_span(text, tpl, real, i, tools) for i in idx]
    for i, span in zip(idx, found, strict=True):
        spans[i] = span if span and span[1] > span[0] else None
    return text, spans


def _skeleton_spans(tpl: ChatTemplate, msgs: tuple[Message, ...], text: str) -> list[tuple[int, int] | None] | None:
    """Fast path for plain messages: one render per row.

    A render with every non-empty content replaced by the sentinel depends only on the roles and on which
    contents are empty, so its pieces are cached. The spans hold when `text` is exactly those pieces with
    the contents spliced in; otherwise (a template that reads the content) the caller diffs as axolotl does.
    """
    key = tuple((m.role, m.content != "") for m in msgs)
    pieces = tpl.skeletons.get(key)
    if pieces is None:
        pieces = tpl.render([{"role": m.role, "content": SENTINEL if m.content else ""} for m in msgs]).split(SENTINEL)
        if len(tpl.skeletons) >= 4096:
            tpl.skeletons.clear()
        tpl.skeletons[key] = pieces
    spans: list[tuple[int, int] | None] = [None] * len(msgs)
    pos, k = 0, 0
    for i, m in enumerate(msgs):
        if not m.content:
            continue
        if k + 1 >= len(pieces) or not text.startswith(pieces[k], pos):
            return None
        pos += len(pieces[k])
        if not text.startswith(m.content, pos):  # type: ignore[arg-type]
            return None
        spans[i] = (pos, pos + len(m.content))  # type: ignore[arg-type]
        pos, k = spans[i][1], k + 1  # type: ignore[index]
    if k + 1 != len(pieces) or len(text) - pos != len(pieces[k]) or not text.endswith(pieces[k]):
        return None
    return spans


def _match_pieces(text: str, pieces: list[str], msgs: list[Message]) -> list[tuple[int, int]] | None:
    """Walk `text` as pieces[0] X0 pieces[1] X1 ... pieces[-1]; the X are the messages' spans."""
    if not text.startswith(pieces[0]) or not text.endswith(pieces[-1]):
        return None
    pos, out, last = len(pieces[0]), [], len(msgs) - 1
    tail = len(text) - len(pieces[-1])
    for k, m in enumerate(msgs):
        nxt = pieces[k + 1]
        c = m.content if isinstance(m.content, str) else ""
        if not m.extra and c and text.startswith(c, pos) and (
            pos + len(c) == tail if k == last else text.startswith(nxt, pos + len(c))
        ):
            end = pos + len(c)
        elif k == last:
            end = tail
        else:
            end = text.find(nxt, pos) if nxt else -1
        if end < pos:
            return None
        out.append((pos, end))
        pos = end + len(nxt)
    return out if pos == len(text) else None


def _diff_span(text: str, tpl: ChatTemplate, real: list[dict[str, Any]], i: int, tools: Any) -> tuple[int, int] | None:
    """Where `text` differs from a render with message i alone replaced by the sentinel (axolotl's diff)."""
    dummy = list(real)
    dummy[i] = {"role": real[i]["role"], "content": SENTINEL}
    other = tpl.render(dummy, tools)
    n = min(len(text), len(other))
    start = 0
    while start < n and text[start] == other[start]:
        start += 1
    suffix = 0
    while suffix < n - start and text[-1 - suffix] == other[-1 - suffix]:
        suffix += 1
    return (start, len(text) - suffix) if SENTINEL in other else None
