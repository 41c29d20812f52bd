"""encode: labels follow segment train flags; the seed example matches axolotl's ids exactly."""

from __future__ import annotations

from newtune.data.encode import encode_joined, encode_pieces
from newtune.data.rowcodec import encode_row
from newtune.data.types import IGNORE, Segment

SEED_ROW = {"segments": [
    {"text": "<s>Hello\n", "label": True}, {"text": "hi there!. ", "label": True},
    {"text": "goodbye ", "label": False}, {"text": "farewell</s>", "label": True},
]}
SEED_IDS = [1, 22557, 13, 12014, 736, 28808, 28723, 28705, 1179, 17664, 28705, 19111, 5458, 2]


def test_seed_example_input_output_mistral(mistral_tok):
    enc = encode_row("input_output", SEED_ROW, mistral_tok)
    assert enc["input_ids"] == SEED_IDS
    assert enc["labels"] == [1, 22557, 13, 12014, 736, 28808, 28723, 28705, IGNORE, IGNORE, IGNORE, 19111, 5458, 2]


def test_encode_pieces_batches_rows_independently(smol_tok):
    batch = [[Segment("Hi", False), Segment(" there", True)], [], [Segment("x", True)]]
    out = encode_pieces(batch, smol_tok)
    hi, there, x = (smol_tok(t, add_special_tokens=False)["input_ids"] for t in ("Hi", " there", "x"))
    assert out[0] == {"input_ids": hi + there, "labels": [IGNORE] * len(hi) + there}
    assert out[1] == {"input_ids": [], "labels": []}
    assert out[2] == {"input_ids": x, "labels": x}


def test_encode_joined_labels_by_character_offset(smol_tok):
    segs = [Segment("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", False),
            Segment("Hi there<|im_end|>", True), Segment("\n", False)]
    enc = encode_joined([segs], smol_tok)[0]
    ids = smol_tok("".join(s.text for s in segs), add_special_tokens=False)["input_ids"]
    assert enc["input_ids"] == ids
    trained = [t for t, lab in zip(ids, enc["labels"], strict=True) if lab != IGNORE]
    assert smol_tok.decode(trained) == "Hi there<|im_end|>"
    assert all(lab in (IGNORE, t) for t, lab in zip(ids, enc["labels"], strict=True))
