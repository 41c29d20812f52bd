"""show(): the token view golden tests read; debug views and --dump."""

from __future__ import annotations

import json

from newtune.data.inspect import debug_text, debug_tokens, print_rows, show, visible_tokens, write_dump
from newtune.data.rowcodec import encode_row

IO_ROW = {"segments": [{"text": "<s>Hello\n", "label": True}, {"text": "hi there!. ", "label": True},
                       {"text": "goodbye ", "label": False}, {"text": "farewell</s>", "label": True}]}


def test_show_brackets_each_masked_run_once(mistral_tok):
    enc = encode_row("input_output", IO_ROW, mistral_tok)
    assert show(enc, mistral_tok) == "<s> ▁Hello <0x0A> ▁hi ▁there ! . ▁ [▁good bye ▁] ▁fare well </s>"


def test_show_masked_at_both_ends(mistral_tok):
    enc = {"input_ids": [1, 22557, 13, 2], "labels": [-100, 22557, -100, -100]}
    assert show(enc, mistral_tok) == "[<s>] ▁Hello [<0x0A> </s>]"
    assert show({"input_ids": [], "labels": []}, mistral_tok) == ""


def test_debug_tokens_is_token_label_id(mistral_tok):
    enc = {"input_ids": [1, 22557, 13], "labels": [-100, 22557, 13]}
    assert debug_tokens(enc, mistral_tok) == ("[dim]<s>(-100, 1)[/dim] [green]␣Hello(22557, 22557)[/green] "
                                              "[green]\\n(13, 13)[/green]")
    assert debug_tokens(enc, mistral_tok, pieces=True) == ("[dim]<s>(-100, 1)[/dim] [green]▁Hello(22557, 22557)[/green] "
                                                           "[green]<0x0A>(13, 13)[/green]")


def test_debug_tokens_decode_byte_level_pieces(smol_tok):
    ids = smol_tok("say five\n🙂", add_special_tokens=False)["input_ids"]
    enc = {"input_ids": ids, "labels": [-100] * len(ids)}
    assert show(enc, smol_tok) == "[say Ġfive Ċ ðŁ ĻĤ]"  # the emoji's 4 bytes span two tokens
    assert visible_tokens(ids, smol_tok) == ["say", "␣five", "\\n", "ðŁ", "🙂"]
    assert debug_tokens(enc, smol_tok).startswith("[dim]say(-100, ")


def test_debug_text_dims_masked_spans(smol_tok):
    ids = smol_tok("Question? Answer.", add_special_tokens=False)["input_ids"]
    enc = {"input_ids": ids, "labels": [-100, -100] + ids[2:]}
    assert smol_tok.decode(ids[:2]) == "Question?"
    assert debug_text(enc, smol_tok) == "[dim]Question?[/dim][bold] Answer.[/bold]"


def test_debug_text_only_brackets_masked_spans_without_a_terminal(smol_tok):
    import io

    from rich.console import Console

    ids = smol_tok("Question? [bold] Answer.", add_special_tokens=False)["input_ids"]
    enc = {"input_ids": ids, "labels": [-100, -100] + ids[2:]}
    log = Console(file=io.StringIO(), width=80)
    print_rows([enc], smol_tok, log, text_only=True)
    assert "[[Question?]] [bold] Answer." in log.file.getvalue()  # markup in the text stays text
    tty = Console(file=io.StringIO(), width=80, force_terminal=True)
    print_rows([enc], smol_tok, tty, text_only=True)
    assert "[[" not in tty.file.getvalue() and "\x1b[2mQuestion?" in tty.file.getvalue()  # dim


def test_write_dump_is_atomic_jsonl(tmp_path):
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9], "labels": [8, 9]}]
    out = tmp_path / "sub" / "dump.jsonl"
    assert write_dump(rows, out) == 2
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
                     {"input_ids": [8, 9], "labels": [8, 9], "attention_mask": [1, 1]}]
    assert [p.name for p in out.parent.iterdir()] == ["dump.jsonl"]


def test_write_dump_leaves_nothing_on_error(tmp_path):
    def rows():
        yield {"input_ids": [1], "labels": [1]}
        raise RuntimeError("boom")

    out = tmp_path / "dump.jsonl"
    try:
        write_dump(rows(), out)
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
