"""Segments given as parts (a style's fixed text cut from the row's fields) encode to the ids and labels of
their whole text, for the byte-level SmolLM2 tokenizer (which tokenizes the parts where every cut is a split)
and the SentencePiece Mistral tokenizer (which always tokenizes the whole text)."""

from __future__ import annotations

import random

import pytest

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.encode import cuts_are_splits, encode_pieces, encode_pieces_columns, splits_by_gpt2_regex
from newtune.data.rowcodec import encode_rows
from newtune.data.styles import STYLE_FORMATS, STYLES, PromptStyle
from newtune.data.types import Segment
from newtune.errors import ConfigError

# Characters around which pre-tokenizers behave differently: spaces and whitespace runs, newlines, tabs, CR,
# Unicode spaces and line separators, letters and digits that run on, contractions, accents, CJK, emoji, and
# special-token texts.
ALPHABET = (list("abcXYZ019 \n\t\r.,:;!?'\"-_#()[]{}<>|/\\*") + [" ", "  ", "\n\n", " \n", "\r\n", "\u00a0", "\u2028",
            "\u3000", "\x1c", "é", "ü", "中文", "🙂", "'s", "'ll", " the", "###", "<|im_end|>", "<|im_start|>", "</s>", "<s>"])


def random_text(rng: random.Random, longest: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def random_parts(rng: random.Random) -> tuple[str, ...]:
    parts = tuple(random_text(rng) for _ in range(rng.randint(2, 5)))
    return tuple(p for p in parts if p) or ("x",)


def whole(batch: list[list[Segment]]) -> list[list[Segment]]:
    """The same segments without parts: the plain full encode of each."""
    return [[Segment(s.text, s.train) for s in segs] for segs in batch]


@pytest.fixture(params=["smol", "mistral"])
def tok(request, smol_tok, mistral_tok):
    return smol_tok if request.param == "smol" else mistral_tok


def test_which_tokenizers_tokenize_by_parts(smol_tok, mistral_tok):
    assert splits_by_gpt2_regex(smol_tok)  # byte-level BPE, GPT-2 regex: parts where the cuts allow
    assert not splits_by_gpt2_regex(mistral_tok)  # SentencePiece puts "▁" before each text: always the whole text


def test_random_parts_encode_as_their_whole_text(tok):
    rng = random.Random(11)
    for _ in range(30):
        batch = [[Segment.of_parts(("Say:\n", "hi"), False)]]  # a first row with parts: the batch takes the parts path
        batch += [[Segment.of_parts(random_parts(rng), rng.random() < 0.5) for _ in range(rng.randint(0, 3))] for _ in range(100)]
        fast, plain = encode_pieces_columns(batch, tok), encode_pieces_columns(whole(batch), tok)
        assert fast.ids.tolist() == plain.ids.tolist()
        assert fast.labels.tolist() == plain.labels.tolist()
        assert fast.offsets.tolist() == plain.offsets.tolist()


def test_the_random_cuts_would_catch_a_wrong_split_rule(smol_tok):
    """The rows above hold cuts that are splits and cuts that are not: tokenizing every cut text alone would
    change ids, so a rule that lets such a cut through fails the test above."""
    rng = random.Random(11)
    taken = wrong_if_taken = 0
    for _ in range(3000):
        parts = random_parts(rng)
        if len(parts) < 2:
            continue
        ids_of_parts = [i for p in parts for i in smol_tok("".join(p), add_special_tokens=False)["input_ids"]]
        if ids_of_parts != smol_tok("".join(parts), add_special_tokens=False)["input_ids"]:
            wrong_if_taken += 1
            assert not cuts_are_splits(parts), parts
        elif cuts_are_splits(parts):
            taken += 1
    assert taken > 100 and wrong_if_taken > 100


def random_alpaca_row(rng: random.Random) -> dict:
    def field() -> str:
        text = random_text(rng, 12)
        return rng.choice(["", " ", "\n", "  "]) + text + rng.choice(["", " ", "\n", "\n\n"]) if rng.random() < 0.4 else text

    return {"instruction": field() or "x", "input": field() if rng.random() < 0.6 else "", "output": field()}


@pytest.mark.parametrize("style", ["", *STYLES])
@pytest.mark.parametrize("train_on_inputs", [False, True])
def test_alpaca_rows_by_parts_match_the_whole_prompt(tok, style, train_on_inputs):
    """alpaca (every style) renders its prompt as parts; the ids and labels are those of the whole prompt."""
    rng = random.Random(f"{style}{train_on_inputs}")
    rows = [random_alpaca_row(rng) for _ in range(300)]
    rows += [{"instruction": "Name three colours.", "input": "", "output": "Red, green, blue."},
             {"instruction": "Add.", "input": "2 + 2", "output": "4"}]
    ds = DatasetConfig(path="-", type=f"alpaca:{style}" if style else "alpaca")
    data = DataConfig(datasets=[ds], train_on_inputs=train_on_inputs)
    fast = encode_rows(rows, ds, data, tok)
    from newtune.data.rowcodec import render_rows

    kind, segments = render_rows(rows, ds, data, tok)
    assert kind == "segments" and any(len(s.parts) > 1 for segs in segments for s in segs)
    assert fast == encode_pieces(whole(segments), tok)


@pytest.mark.parametrize("fmt", [
    PromptStyle("{instruction} {input} ", "{instruction} ", "{system}"),
    PromptStyle("{{literal}} {instruction}\n{input}", "[{instruction}]", "<<{system}>>\n"),
    PromptStyle("{instruction!r} {input}", "{instruction:>4}", "{system}"),  # more than plain fields: one part
    *STYLE_FORMATS.values(),
])
def test_render_parts_join_to_the_rendered_text(fmt):
    rng = random.Random(3)
    for _ in range(200):
        args = (random_text(rng), random_text(rng) if rng.random() < 0.5 else "", random_text(rng) if rng.random() < 0.5 else None)
        parts = fmt.render_parts(*args)
        assert "".join(parts) == fmt.render(*args) and all(parts)


@pytest.mark.parametrize("fmt", [PromptStyle("{instruction} {system}", "{instruction}"), PromptStyle("{0}", "{instruction}"),
                                 PromptStyle("{instruction}", "{input}"), PromptStyle("{instruction}", "{instruction}", "{input}")])
def test_render_parts_refuses_what_render_refuses(fmt):
    with pytest.raises(ConfigError) as rendered:
        fmt.render("a", "b", "c") + fmt.render("a", "", "c")
    with pytest.raises(ConfigError) as by_parts:
        fmt.render_parts("a", "b", "c") + fmt.render_parts("a", "", "c")
    assert str(by_parts.value) == str(rendered.value)
