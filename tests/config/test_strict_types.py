"""The strict scalar layer (config/base.py) and the YAML reader: what YAML guesses wrongly is an error,
what axolotl configs write is still accepted."""

from __future__ import annotations

import re

import pytest

from newtune.cli import extra_overrides
from newtune.config.load import takes_bool
from newtune.errors import ConfigError, NewtuneError
from newtune.load import load_config

DS = "datasets:\n  - path: d.jsonl\n    type: alpaca\n"


def load_text(tmp_path, text: str):
    (tmp_path / "c.yml").write_text(text)
    return load_config(tmp_path / "c.yml")


def problems_of(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    return e.value.problems


def test_what_axolotl_configs_write_is_accepted(tmp_path):
    cfg = load_text(tmp_path, DS + "learning_rate: 1e-4\nval_set_size: 0.05\nsample_packing: yes\nseed: 0\n"
                    "lora_alpha: 0.5\nbf16: auto\nmicro_batch_size: 2.0\nnum_epochs: 0.5\n"
                    "special_tokens:\n  pad_token: <|pad|>\n")
    assert cfg.train.learning_rate == 1e-4  # YAML 1.1 reads 1e-4 as text; it is still a number
    assert cfg.data.val_set_size == 0.05 and cfg.train.sample_packing is True and cfg.train.seed == 0
    assert cfg.adapter.lora_alpha == 0.5 and cfg.train.micro_batch_size == 2 and cfg.train.num_epochs == 0.5
    assert load_text(tmp_path, DS + "val_set_size: 100\n").data.val_set_size == 100
    assert load_text(tmp_path, DS + "val_set_size: 100.0\nseed: 4294967295\n").train.seed == 2**32 - 1
    assert load_text(tmp_path, DS + "max_steps: -1\n").train.max_steps is None  # HF Trainer's "no limit"


def test_yaml_booleans_infinities_and_fractional_counts_are_refused(tmp_path):
    assert problems_of(tmp_path, DS + "micro_batch_size: yes\nlora_r: off\n") == [
        "lora_r: a number is needed, not false (YAML reads yes/no/on/off as true/false) (got False)",
        "micro_batch_size: a number is needed, not true (YAML reads yes/no/on/off as true/false) (got True)"]
    assert problems_of(tmp_path, DS + "learning_rate: .inf\nadam_epsilon: .nan\n") == [
        "learning_rate: Input should be a finite number (got inf)",
        "adam_epsilon: Input should be a finite number (got nan)"]
    assert problems_of(tmp_path, DS + "val_set_size: 1.5\n") == [
        "val_set_size: 1.5 is neither a fraction below 1 (0.05: 5% of the rows) nor a whole row count (100) (got 1.5)"]
    assert problems_of(tmp_path, DS + "eval_steps: 0.1\nmax_steps: 0\n") == [
        "max_steps: Input should be greater than or equal to 1 (got 0)",
        "eval_steps: 0.1 as a fraction of the run's steps (axolotl, HF Trainer) is not supported by newtune yet; "
        "give a step count, or use evals_per_epoch (got 0.1)"]
    assert problems_of(tmp_path, DS + "seed: -1\n") == ["seed: Input should be greater than or equal to 0 (got -1)"]
    assert problems_of(tmp_path, DS + "special_tokens:\n  eos_token: ' '\n") == [
        "special_tokens.eos_token: empty text; give a value or remove the key (got ' ')"]


def test_a_key_given_twice_names_both_lines(tmp_path):
    assert problems_of(tmp_path, "seed: 1\n" + DS + "    split: train\n    split: test\nseed: 2\n") == [
        "line 6: split is given twice (lines 5 and 6); YAML would keep only the last: delete one",
        "line 7: seed is given twice (lines 1 and 7); YAML would keep only the last: delete one"]
    # a YAML merge key brings keys that the mapping may override: no duplicate
    cfg = load_text(tmp_path, "datasets:\n  - &d\n    path: d.jsonl\n    type: alpaca\n"
                    "test_datasets:\n  - <<: *d\n    path: e.jsonl\n")
    assert cfg.data.test_datasets[0].path == "e.jsonl"


def test_a_bare_override_is_true_only_for_a_true_false_key():
    assert takes_bool("sample_packing") and takes_bool("bf16") and not takes_bool("learning_rate")
    assert extra_overrides(["--sample_packing", "--lr_scheduler", "linear"]) == ["sample_packing=true",
                                                                               "lr_scheduler=linear"]
    for argv in (["--learning_rate"], ["--learning_rate", "--seed", "3"], ["--datasets[0].path"]):
        with pytest.raises(NewtuneError, match=re.escape(f"{argv[0]} has no value")):
            extra_overrides(argv)


def test_spaces_around_an_override_equals_sign_are_not_part_of_the_key():
    cfg = load_config(None, ["learning_rate = 3e-4"], raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}]})
    assert cfg.train.learning_rate == 3e-4


def test_a_broken_yaml_override_value_is_a_problem_not_a_crash():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["learning_rate=[1"], raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}]})
    assert e.value.problems[0].startswith("override 'learning_rate=[1': the value '[1' is not valid YAML")
