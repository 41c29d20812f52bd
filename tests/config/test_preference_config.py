"""`rl:` keys: axolotl 0.21.0's names and meanings, and clear refusals for what newtune does not do."""

from __future__ import annotations

import pytest

from newtune.errors import ConfigError
from newtune.load import load_config

BASE = {"rl": "dpo", "datasets": [{"path": "pairs.jsonl", "type": "chatml.intel"}]}


def problems(**keys) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(None, raw={**BASE, **keys})
    return str(e.value)


def test_beta_comes_from_rl_beta_then_the_older_dpo_beta_then_trls_default(caplog):
    assert load_config(None, raw={**BASE, "rl_beta": 0.3, "dpo_beta": 0.5}).pref.beta == 0.3
    assert load_config(None, raw={**BASE, "dpo_beta": 0.5}).pref.beta == 0.5
    assert load_config(None, raw=BASE).pref.beta == 0.1


def test_loss_types_and_weights():
    cfg = load_config(None, raw={**BASE, "dpo_loss_type": ["sigmoid", "robust"], "dpo_loss_weights": [1.0, 0.5],
                                 "dpo_label_smoothing": 0.1})
    assert cfg.pref.dpo_loss_type == ["sigmoid", "robust"] and cfg.pref.dpo_loss_weights == [1.0, 0.5]
    assert "one weight per dpo_loss_type" in problems(dpo_loss_type=["sigmoid"], dpo_loss_weights=[1.0, 2.0])
    assert "unknown dpo_loss_type 'sigmod'" in problems(dpo_loss_type=["sigmod"])
    assert "'sft' is not supported by newtune yet" in problems(dpo_loss_type=["sft"])


def test_label_smoothing_is_refused_where_trl_would_ignore_it():
    assert "used only by the robust and exo_pair losses" in problems(dpo_label_smoothing=0.1)
    assert "exo_pair needs dpo_label_smoothing" in problems(dpo_loss_type=["exo_pair"])


def test_rl_ipo_fixes_its_loss():
    assert "rl: ipo is DPO with dpo_loss_type [ipo]" in problems(rl="ipo", dpo_loss_type=["sigmoid"])


@pytest.mark.parametrize("method", ["orpo", "kto", "simpo", "grpo"])
def test_methods_not_built_yet_say_so(method):
    assert f"rl: {method} is not supported by newtune yet" in problems(rl=method)


def test_preference_keys_need_rl():
    with pytest.raises(ConfigError, match="rl_beta: a preference-training key: set rl: dpo"):
        load_config(None, raw={"datasets": [{"path": "x.jsonl", "type": "alpaca"}], "rl_beta": 0.2})


def test_preference_types_only_with_rl_and_sft_types_not_with_it():
    assert "unknown preference dataset type 'alpaca' for rl: dpo" in problems(
        datasets=[{"path": "x.jsonl", "type": "alpaca"}])
    assert "needs a preference dataset type" in problems(datasets=[{"path": "x.jsonl"}])
    with pytest.raises(ConfigError, match="unknown dataset type 'chatml.intel'"):
        load_config(None, raw={"datasets": [{"path": "x.jsonl", "type": "chatml.intel"}]})


def test_combinations_not_supported_yet():
    assert "preference pairs are not packed" in problems(sample_packing=True)
    assert "from a saved adapter is not supported yet" in problems(adapter="lora", lora_target_linear=True,
                                                                   lora_model_dir="some/adapter")


def test_axolotl_preference_types_not_built_yet_say_so():
    assert "preference dataset type 'chat_template.default' is not supported by newtune yet" in problems(
        datasets=[{"path": "x.jsonl", "type": "chat_template.default"}])
