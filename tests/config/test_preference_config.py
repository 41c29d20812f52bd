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


@pytest.mark.parametrize("method", ["kto", "grpo"])
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


def test_orpo_weight_comes_from_orpo_alpha_or_rl_beta_as_axolotl_passes_them():
    assert load_config(None, raw={**BASE, "rl": "orpo", "orpo_alpha": 0.3}).pref.orpo_weight == 0.3
    assert load_config(None, raw={**BASE, "rl": "orpo", "rl_beta": 0.4}).pref.orpo_weight == 0.4
    assert load_config(None, raw={**BASE, "rl": "orpo"}).pref.orpo_weight == 0.1  # TRL ORPOConfig's beta
    assert "set only one" in problems(rl="orpo", orpo_alpha=0.3, rl_beta=0.4)
    assert "greater than 0" in problems(rl="orpo", orpo_alpha=0)


def test_simpo_needs_gamma_and_takes_trls_cpo_alpha_default():
    cfg = load_config(None, raw={**BASE, "rl": "simpo", "simpo_gamma": 0.8, "rl_beta": 2.0})
    assert (cfg.pref.simpo_gamma, cfg.pref.beta, cfg.pref.nll_weight) == (0.8, 2.0, 1.0)
    assert load_config(None, raw={**BASE, "rl": "simpo", "simpo_gamma": 0.8, "cpo_alpha": 0}).pref.nll_weight == 0.0
    assert "rl: simpo needs simpo_gamma" in problems(rl="simpo")


@pytest.mark.parametrize(("rl", "key", "value", "owner"), [
    ("dpo", "orpo_alpha", 0.2, "orpo"), ("dpo", "simpo_gamma", 0.5, "simpo"), ("ipo", "cpo_alpha", 0.0, "simpo"),
    ("orpo", "simpo_gamma", 0.5, "simpo"), ("orpo", "dpo_loss_type", ["sigmoid"], "dpo / ipo"),
    ("orpo", "dpo_label_smoothing", 0.1, "dpo / ipo"), ("simpo", "dpo_label_smoothing", 0.1, "dpo / ipo"),
    ("simpo", "orpo_alpha", 0.2, "orpo"), ("simpo", "dpo_loss_weights", [1.0], "dpo / ipo"),
])
def test_keys_of_one_method_are_refused_on_another(rl, key, value, owner):
    extra = {"simpo_gamma": 0.5} if rl == "simpo" else {}
    assert f"{key} applies to rl: {owner} only" in problems(rl=rl, **extra, **{key: value})


def test_method_keys_need_rl():
    with pytest.raises(ConfigError, match="simpo_gamma: a preference-training key"):
        load_config(None, raw={"datasets": [{"path": "x.jsonl", "type": "alpaca"}], "simpo_gamma": 0.5})
