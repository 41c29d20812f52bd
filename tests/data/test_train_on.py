"""train_on.py: which messages and which EOS/EOT tokens are trained (axolotl 0.21.0's rules)."""

from __future__ import annotations

import pytest

from newtune.config.data import DatasetConfig
from newtune.data import train_on
from newtune.data.options import options_of
from newtune.data.types import Message
from newtune.errors import DataError

CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"


def rules(smol_tok, train_on_inputs=False, eot_tokens=None, template=CHATML, **keys):
    opts = options_of(DatasetConfig(path="-", type="chat_template", **keys))
    return train_on.resolve(opts, train_on_inputs, eot_tokens, opts.role_aliases(), template, smol_tok)


def test_defaults(smol_tok):
    r = rules(smol_tok)
    assert (r.roles_to_train, r.eos, r.eot, r.eot_tokens, r.eos_token) == (
        frozenset({"assistant"}), "turn", "turn", ("<|im_end|>",), "<|im_end|>")
    assert not r.locate_all


def test_train_on_eot_defaults_to_train_on_eos(smol_tok):
    assert rules(smol_tok, train_on_eos="last").eot == "last"
    assert rules(smol_tok, train_on_eos="all").locate_all


def test_roles_to_train_goes_through_the_role_aliases(smol_tok):
    assert rules(smol_tok, roles_to_train=["gpt", "human"]).roles_to_train == frozenset({"assistant", "user"})
    assert rules(smol_tok, roles_to_train=[]).roles_to_train == frozenset()


def test_message_flag_then_detail_then_role(smol_tok):
    r = rules(smol_tok)
    assert r.message_trained(Message("user", "x", train=True))
    assert not r.message_trained(Message("assistant", "x", train=False))
    assert r.message_trained(Message("user", "x", train_detail=((0, 0, False),)))  # a non-empty detail trains
    assert not r.message_trained(Message("assistant", "x", train_detail=()))
    assert r.message_trained(Message("assistant", "x")) and not r.message_trained(Message("user", "x"))
    assert rules(smol_tok, train_on_inputs=True).message_trained(Message("system", "x"))


def test_role_aliases():
    assert train_on.role_aliases(None)["gpt"] == "assistant"
    assert train_on.role_aliases({"user": ["human"], "assistant": ["bot"]}) == {
        "user": "user", "assistant": "assistant", "human": "user", "bot": "assistant"}


def test_eos_in_eot_tokens_must_agree(smol_tok):
    with pytest.raises(DataError, match=r"train_on_eos \(turn\) and train_on_eot \(all\) disagree"):
        rules(smol_tok, train_on_eot="all")
    assert rules(smol_tok, eot_tokens=["<|endoftext|>"], template=CHATML + "<|endoftext|>",
                 train_on_eot="all").eot == "all"


def test_eot_tokens_not_in_the_template_are_dropped(smol_tok):
    r = rules(smol_tok, eot_tokens=["<|endoftext|>", "<|im_end|>"])
    assert r.eot_tokens == ("<|im_end|>",)


def test_multi_token_eot_is_an_error(smol_tok):
    with pytest.raises(DataError, match=r"EOT token '\[END\]' is encoded as \d+ tokens"):
        rules(smol_tok, eot_tokens=["[END]"], template=CHATML + "[END]")


@pytest.mark.parametrize(("mode", "expected"), [
    ("turn", {12, 32}), ("all", {12, 22, 32}), ("last", {32}), ("none", set()),
])
def test_special_positions(smol_tok, mode, expected):
    r = rules(smol_tok, train_on_eos=mode)
    located = [(True, 12, 12), (False, 22, 22), (True, 32, 32), (False, None, None)]
    assert train_on.special_positions(located, r) == expected


def test_special_positions_eot_and_eos_apart(smol_tok):
    r = rules(smol_tok, eot_tokens=["<|endoftext|>"], template=CHATML + "<|endoftext|>", train_on_eos="none",
              train_on_eot="last")
    assert train_on.special_positions([(True, 5, 7), (True, 15, None), (False, None, 30)], r) == {15}
