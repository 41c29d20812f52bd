"""Format options: each type's Options model decides which keys its dataset entries may set."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from newtune.config.data import DatasetConfig
from newtune.data.formats import FORMATS, PRETOKENIZED
from newtune.data.options import options_of
from newtune.data.types import FormatOptions
from newtune.errors import ConfigError
from newtune.load import load_config


def problems(*entries: dict, **top) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": list(entries), **top})
    return e.value.problems


def test_a_key_of_another_format_is_an_error_with_did_you_mean():
    assert problems({"path": "a.jsonl", "type": "alpaca", "field_messages": "conversations"}) == [
        "datasets[0].field_messages: type 'alpaca' does not read this key (types that do: chat_template, "
        "chat_template.default). Did you mean type: chat_template?"]


def test_the_keys_axolotl_ignores_on_alpaca_are_all_reported():
    got = problems({"path": "a.jsonl", "type": "alpaca", "roles_to_train": ["gpt"], "conversation": "chatml",
                    "field": "text"})
    assert [p.split(":")[0] for p in got] == ["datasets[0].roles_to_train", "datasets[0].conversation",
                                              "datasets[0].field"]
    assert all("type 'alpaca' does not read this key" in p for p in got)


def test_a_typo_among_the_format_keys_suggests_the_key():
    assert problems({"path": "a.jsonl", "type": "chat_template", "field_mesages": "m"}) == [
        "datasets[0].field_mesages: unknown key. Did you mean 'field_messages'?"]
    assert problems({"path": "a.jsonl", "type": "completion", "fild": "body"}) == [
        "datasets[0].fild: unknown key. Did you mean 'field'?"]


def test_option_values_are_validated_with_their_path():
    got = problems({"path": "a.jsonl", "type": "chat_template", "train_on_eos": "sometimes"},
                   {"path": "b.jsonl", "type": "alpaca_chat", "conversation": "vicuna"})
    assert got[0].startswith("datasets[0].train_on_eos: Input should be 'all', 'turn', 'last' or 'none'")
    assert got[1].startswith("datasets[1].conversation: unknown prompt style 'vicuna'")


def test_format_problems_join_the_config_problems_in_one_list():
    got = problems({"path": "a.jsonl", "type": "alpaca", "field_messages": "m"}, lerning_rate=1)
    assert got[0] == "lerning_rate: unknown key. Did you mean 'learning_rate'?"
    assert got[1].startswith("datasets[0].field_messages: type 'alpaca' does not read this key")


def test_test_datasets_and_pretokenized_rows_are_checked_too():
    got = problems({"path": "a.jsonl", "type": "alpaca"},
                   test_datasets=[{"path": "b.jsonl", "field_messages": "m"}])
    assert got == ["test_datasets[0].field_messages: type '(none: pre-tokenized rows)' does not read this key "
                   "(types that do: chat_template, chat_template.default). Did you mean type: chat_template?"]


def test_the_style_comes_from_type_never_from_a_key():
    assert problems({"path": "a.jsonl", "type": "alpaca", "style": "chat"}) == [
        "datasets[0].style: comes from `type:` itself (type: alpaca:<style>), not from a key"]
    assert problems({"path": "a.jsonl", "type": "alpaca_chat", "style": "chat"}) == [
        "datasets[0].style: unknown key. Did you mean 'type'?"]
    assert options_of(DatasetConfig(path="-", type="alpaca:chatml")).style == "chatml"
    assert options_of(DatasetConfig(path="-", type="alpaca")).style is None


def test_unchecked_entries_are_refused_when_used():
    """An entry built without `check` (a library caller) cannot slip a key through at run time."""
    with pytest.raises(ConfigError, match=r"datasets \(path x.jsonl\).field_messages: type 'alpaca' does not read"):
        options_of(DatasetConfig(path="x.jsonl", type="alpaca", field_messages="m"))


def test_user_defined_keys_come_from_the_mapping_then_the_entry():
    ds = DatasetConfig(path="-", type={"field_instruction": "q"}, field_instruction="ignored", field_output="a")
    opts = options_of(ds)
    assert (opts.field_instruction, opts.field_output) == ("q", "a")


def test_every_format_declares_a_strict_options_model():
    for name, fmt in {**FORMATS, "(pretokenized)": PRETOKENIZED}.items():
        assert issubclass(fmt.Options, FormatOptions) and issubclass(fmt.Options, BaseModel), name
        assert fmt.Options.model_config.get("extra") == "forbid", name
        assert set(fmt.Options.FROM_TYPE) <= set(fmt.Options.model_fields), name


def test_instruct_formats_declare_their_prompt_field():
    """Inference reads the prompt field from the declared contract (export/artifacts.py)."""
    for name, fmt in FORMATS.items():
        if fmt.kind == "segments" and name not in ("completion", "input_output"):
            field = fmt.prompt_field_for(options_of(DatasetConfig(path="-", type=name)))
            assert isinstance(field, str) and field, name
    user = options_of(DatasetConfig(path="-", type={"field_instruction": "q"}))
    assert FORMATS["user_defined"].prompt_field_for(user) == "q"


def test_a_blank_key_of_another_format_asks_for_nothing():
    """axolotl configs leave keys empty (`field_messages:`): null means the default, for format keys too."""
    cfg = load_config(None, raw={"datasets": [{"path": "a.jsonl", "type": "alpaca", "field_messages": None}]})
    assert options_of(cfg.data.datasets[0]).style is None
    assert problems({"path": "a.jsonl", "type": "alpaca", "feild_mesages": None}) == [
        "datasets[0].feild_mesages: unknown key. Did you mean 'field_messages'?"]
