"""Property tests (hypothesis) of the masking invariants, on the real SmolLM2 tokenizer:

- segment formats (input_output, the instruct formats): ids are each segment tokenized alone, in order; a token
  is trained exactly when its segment is, and then its label is its id;
- joined formats (chat templates): ids are the whole text tokenized at once; a token lying wholly inside trained
  text is trained, one wholly inside masked text is masked, and a trained label is always its own id.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from newtune.data.encode import encode_joined, encode_pieces
from newtune.data.types import IGNORE, Segment

# Pieces that stress token boundaries: specials, spaces, newlines, punctuation, non-ASCII, digits.
PIECES = ["<|im_start|>", "<|im_end|>", "user", "assistant", "\n", " ", "  ", "Hi", " there", "!", ".", "ü", "日本",
          "42", "a", "b", "\t", "'s", " don't", "-", "<", ">", "```"]
segment = st.builds(Segment, st.lists(st.sampled_from(PIECES), max_size=5).map("".join), st.booleans())
segments = st.lists(segment, max_size=7)


@settings(max_examples=100, deadline=None)
@given(st.lists(segments, min_size=1, max_size=3))
def test_segment_formats_tokenize_each_segment_alone_and_label_by_segment(smol_tok, rows):
    out = encode_pieces(rows, smol_tok)
    assert len(out) == len(rows)  # rows stay independent and in order
    for segs, enc in zip(rows, out, strict=True):
        ids, labels = [], []
        for s in segs:
            piece = smol_tok(s.text, add_special_tokens=False)["input_ids"] if s.text else []
            ids += piece
            labels += piece if s.train else [IGNORE] * len(piece)
        assert enc["input_ids"] == ids
        assert enc["labels"] == labels


@settings(max_examples=100, deadline=None)
@given(st.lists(segments, min_size=1, max_size=3))
def test_joined_formats_label_each_token_by_the_text_it_covers(smol_tok, rows):
    out = encode_joined(rows, smol_tok)
    for segs, enc in zip(rows, out, strict=True):
        text = "".join(s.text for s in segs)
        encoding = smol_tok.backend_tokenizer.encode(text, add_special_tokens=False)
        assert enc["input_ids"] == encoding.ids
        assert len(enc["labels"]) == len(enc["input_ids"])
        trained_chars = [s.train for s in segs for _ in s.text]
        for tid, label, (start, end) in zip(encoding.ids, enc["labels"], encoding.offsets, strict=True):
            assert label in (IGNORE, tid)
            covered = trained_chars[start:end]
            if covered and all(covered):
                assert label == tid, (text, start, end)
            elif covered and not any(covered):
                assert label == IGNORE, (text, start, end)
