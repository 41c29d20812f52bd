"""User-defined `type:` mappings: token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import USER_DEFINED, USER_DEFINED_MIN, USER_DEFINED_TYPE

from newtune.config.data import DatasetConfig
from newtune.data.rowcodec import encode_row
from newtune.errors import ConfigError


@pytest.mark.parametrize("case", ["user_defined", "user_defined_defaults"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_custom_fields_and_formats(smol_tok):
    ds = DatasetConfig(path="-", type=USER_DEFINED_TYPE)
    assert masked_and_trained(encode_row(ds, USER_DEFINED[0], smol_tok), smol_tok) == (
        "<<You are a poet.>>\n[INST] Write about snow. (mood: calm) [/INST]", "White hush on the hill.<|im_end|>")
    # null system field → system_prompt; empty input → no_input_format
    assert masked_and_trained(encode_row(ds, USER_DEFINED[1], smol_tok), smol_tok)[0] == (
        "[INST] Write about fire. [/INST]")


def test_defaults(smol_tok):
    ds = DatasetConfig(path="-", type={"field_instruction": "instruction"})
    assert masked_and_trained(encode_row(ds, USER_DEFINED_MIN[0], smol_tok), smol_tok) == (
        "Greet me. warmly ", "Hello, friend!<|im_end|>")
    assert masked_and_trained(encode_row(ds, USER_DEFINED_MIN[1], smol_tok), smol_tok) == ("Wave. ", "*waves*<|im_end|>")


def test_system_prompt_used_when_row_has_no_system_field(smol_tok):
    ds = DatasetConfig(path="-", type={"system_prompt": "Be kind.", "system_format": "[{system}] "})
    assert masked_and_trained(encode_row(ds, USER_DEFINED_MIN[1], smol_tok), smol_tok)[0] == "[Be kind.] Wave. "


def test_dataset_level_keys_with_type_user_defined(smol_tok):
    ds = DatasetConfig(path="-", type="user_defined", format="Q: {instruction} {input}\nA: ", no_input_format="Q: {instruction}\nA: ")
    assert masked_and_trained(encode_row(ds, USER_DEFINED_MIN[1], smol_tok), smol_tok)[0] == "Q: Wave.\nA: "


def test_unknown_placeholder_is_a_config_error(smol_tok):
    ds = DatasetConfig(path="-", type={"no_input_format": "{instruction} {question}"})
    with pytest.raises(ConfigError, match=r"no_input_format: cannot fill .*KeyError: 'question'"):
        encode_row(ds, USER_DEFINED_MIN[1], smol_tok)
