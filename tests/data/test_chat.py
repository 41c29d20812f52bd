"""data/chat.py: one render per conversation, message spans, training_detail tokens, labelling by overlap."""

from __future__ import annotations

import pytest

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data import chat
from newtune.data.encode import encode_joined
from newtune.data.types import Conversation, Message, Segment

M = -100
CHATML_TEXT = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"


def setup_for(tok, template=None, **keys):
    if template is not None:
        keys.update(chat_template="jinja", chat_template_jinja=template)
    ds = DatasetConfig(path="-", type="chat_template", **keys)
    return ds, DataConfig(datasets=[ds])


def conv(*pairs):
    return Conversation(tuple(Message(r, c) for r, c in pairs))


def test_chatml_template_text(smol_tok):
    tpl = chat.ChatTemplate.build(chat.named_template("chatml"), smol_tok)
    assert tpl.render([{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]) == CHATML_TEXT


def test_segments_of_a_chatml_conversation(smol_tok):
    ds, data = setup_for(smol_tok, chat_template="chatml")
    segs = chat.render_segments(conv(("user", "Hi!"), ("assistant", "Hello.")), ds, data, smol_tok)
    assert segs == [Segment("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", False),
                    Segment("Hello.<|im_end|>", True), Segment("\n", False)]


def test_one_render_per_row_whatever_the_number_of_turns(smol_tok, monkeypatch):
    ds, data = setup_for(smol_tok, chat_template="chatml", train_on_eos="all")
    calls = []
    real = chat.ChatTemplate.render
    monkeypatch.setattr(chat.ChatTemplate, "render", lambda self, *a: calls.append(1) or real(self, *a))
    turns = [("user", f"q{i}") if i % 2 == 0 else ("assistant", f"a{i}") for i in range(40)]
    segs = chat.render_segments(conv(*turns), ds, data, smol_tok)
    assert len(calls) == 2  # the row, and the skeleton of its roles (cached)
    other = [(role, text + "!") for role, text in turns]
    assert [s.text for s in chat.render_segments(conv(*other), ds, data, smol_tok) if s.train][1] == "a1!<|im_end|>"
    assert len(calls) == 3
    assert [s.text for s in segs if s.train][:3] == ["<|im_end|>", "a1<|im_end|>", "<|im_end|>"]


def test_template_that_trims_content(smol_tok):
    trims = "{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] | trim + '<|im_end|>' }}{% endfor %}"
    ds, data = setup_for(smol_tok, trims)
    segs = chat.render_segments(conv(("user", " Hi! "), ("assistant", " Hello. ")), ds, data, smol_tok)
    assert [(s.text, s.train) for s in segs] == [("[user] Hi!<|im_end|>[assistant] ", False), ("Hello.<|im_end|>", True)]


def test_template_that_merges_system_into_the_first_user_turn(smol_tok):
    merges = ("{% set sys = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
              "{% for m in messages if m['role'] != 'system' %}{% if m['role'] == 'user' %}"
              "{{ '[INST] ' + (sys + '\n\n' if loop.first and sys else '') + m['content'] + ' [/INST]' }}"
              "{% else %}{{ m['content'] + '<|im_end|>' }}{% endif %}{% endfor %}")
    ds, data = setup_for(smol_tok, merges)
    segs = chat.render_segments(conv(("system", "Be brief."), ("user", "Hi!"), ("assistant", "Hello.")), ds, data,
                                smol_tok)
    assert [(s.text, s.train) for s in segs] == [("[INST] Be brief.\n\nHi! [/INST]", False), ("Hello.<|im_end|>", True)]


def test_template_that_repeats_a_message_falls_back_to_one_diff_per_message(smol_tok, monkeypatch):
    repeats = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '<|im_end|>' }}{% endfor %}"
               "{{ 'last: ' + messages[-1]['content'] }}")
    ds, data = setup_for(smol_tok, repeats)
    calls = []
    real = chat.ChatTemplate.render
    monkeypatch.setattr(chat.ChatTemplate, "render", lambda self, *a: calls.append(1) or real(self, *a))
    segs = chat.render_segments(conv(("user", "Hi!"), ("assistant", "Hello.")), ds, data, smol_tok)
    # axolotl's diff: everything from the first to the last character that changes with the message
    assert [(s.text, s.train) for s in segs] == [("user: Hi!<|im_end|>assistant: ", False),
                                                 ("Hello.<|im_end|>last: Hello.", True)]
    assert len(calls) == 4  # the row, the cached skeleton, the 2-render match, then one diff for the assistant


def test_content_that_contains_the_next_template_piece(smol_tok):
    ds, data = setup_for(smol_tok, chat_template="chatml", roles_to_train=["user"])
    tricky = "a<|im_end|>\n<|im_start|>assistant\nb"
    segs = chat.render_segments(conv(("user", tricky), ("assistant", "c")), ds, data, smol_tok)
    assert [s.text for s in segs if s.train] == [tricky + "<|im_end|>"]


@pytest.mark.parametrize(("details", "expected"), [
    (((0, 7, True),), [True, True, False, False]),  # "Hi there" → tokens Hi, ␣there
    (((0, 4, True),), [True, True, False, False]),  # a span ending inside ␣there widens to the token's end
    (((3, 7, True),), [False, True, False, False]),  # a span starting on the space widens back to ␣there's start
    (((0, 16, True), (9, 15, False)), [True, True, True, True]),  # an untrained span never untrains a token
    (((10, 16, True),), [False, False, False, True]),
])
def test_detail_token_flags(details, expected):
    # "Hi there, friend!": tokens at 0 "Hi", 2 " there", 8 ",", 9 " friend!"
    assert chat.detail_token_flags([0, 2, 8, 9], 17, details) == expected


def test_training_detail_trains_only_the_chosen_tokens(smol_tok):
    ds, data = setup_for(smol_tok, chat_template="chatml")
    msg = Message("assistant", "Hi there, friend!", train_detail=((0, 7, True),))
    segs = chat.render_segments(Conversation((Message("user", "x"), msg)), ds, data, smol_tok)
    assert [s.text for s in segs if s.train] == ["Hi there", "<|im_end|>"]


def test_setup_is_computed_once_per_dataset(smol_tok):
    ds, data = setup_for(smol_tok, chat_template="chatml")
    assert chat.chat_setup(ds, data, smol_tok) is chat.chat_setup(ds, data, smol_tok)


def test_encode_joined_overlap_trains_a_token_straddling_into_trained_text(smol_tok):
    # " there" is one token that starts on the untrained space and ends in the trained text
    segs = [[Segment("Hi ", False), Segment("there", True), Segment("<|im_end|>", False)]]
    ids = smol_tok("Hi there<|im_end|>", add_special_tokens=False)["input_ids"]
    assert [smol_tok.decode([i]) for i in ids] == ["Hi", " there", "<|im_end|>"]
    assert encode_joined(segs, smol_tok)[0]["labels"] == [M, M, M]
    assert encode_joined(segs, smol_tok, overlap=True)[0]["labels"] == [M, ids[1], M]


def test_ids_and_offsets_direct_path_equals_the_tokenizer_call(smol_tok):
    import copy

    from newtune.data.encode import ids_and_offsets

    texts = ["<|im_start|>user\nHi there!<|im_end|>\n", "plain text, with ünïcode ✓"]
    direct = ids_and_offsets(texts, smol_tok)
    truncating = copy.deepcopy(smol_tok)
    truncating.backend_tokenizer.enable_truncation(max_length=1000)  # forces the tokenizer(...) path
    enc = smol_tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert direct == (enc["input_ids"], enc["offset_mapping"]) == ids_and_offsets(texts, truncating)


PIECES = ["Hi", " there", "\n", "\n\n", "<|im_end|>", "</s>", " ✓", "é", "  ", "x", "[INST]", " 123", "ünï"]


@pytest.mark.parametrize("tok_name", ["smol_tok", "mistral_tok"])
def test_run_lookup_labels_equal_offset_labels(tok_name, request):
    """The char → token lookups label exactly as the bisect over full offset lists, on any segmentation."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from newtune.data.encode import _label_overlapping, _label_runs

    tok = request.getfixturevalue(tok_name)
    segment = st.builds(Segment, st.lists(st.sampled_from(PIECES), max_size=4).map("".join), st.booleans())

    @settings(max_examples=150, deadline=None)
    @given(st.lists(segment, min_size=1, max_size=6))
    def check(segs):
        text = "".join(s.text for s in segs)
        enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
        fast = _label_runs(segs, enc.ids, enc)
        assert fast is None or fast == _label_overlapping(segs, enc.ids, enc.offsets)

    check()


@pytest.mark.parametrize(("gap", "eot_trained"), [("", True), (" ", True), ("\n\n---", True), (" a b c d", False)])
def test_eot_within_three_tokens_of_the_message_end(smol_tok, gap, eot_trained):
    template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '" + gap + "<|im_end|>' }}{% endfor %}"
    ds, data = setup_for(smol_tok, template)
    segs = chat.render_segments(conv(("user", "Hi!"), ("assistant", "Hello.")), ds, data, smol_tok)
    assert [s.text for s in segs if s.train] == (["Hello.", "<|im_end|>"] if gap and eot_trained else
                                                 ["Hello.<|im_end|>"] if eot_trained else ["Hello."])
