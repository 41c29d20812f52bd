"""merge-lora: the merged model loads with plain transformers and gives base + adapter's logits."""

from __future__ import annotations

import io
import json

import pytest
from lora_fixture import make_lora_run
from rich.console import Console

from newtune.errors import ModelError
from newtune.export.merge import run_merge
from tolerances import assert_close_sums, decoder_terms, rel_tol


@pytest.fixture
def lora_run(tmp_path, tiny_model_dir, smol_tok):
    return make_lora_run(tmp_path, tiny_model_dir, smol_tok)

def quiet():
    return Console(file=io.StringIO(), width=200)


def test_merged_logits_equal_base_plus_adapter(lora_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, peft = lora_run
    target = run_merge(cfg, quiet(), tmp_path / "merged")
    assert target == tmp_path / "merged"
    merged = AutoModelForCausalLM.from_pretrained(target)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    ids = torch.tensor([[1, 520, 2113, 314, 253, 1351, 30, 2]])
    peft.eval()
    with torch.no_grad():
        want = peft(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        with peft.disable_adapter():
            base = peft(input_ids=ids).logits
    # Merged weights (W + s·B·A, rounded once) sum in another order than W·x + s·B·(A·x): one forward's sums.
    assert_close_sums(got, want, decoder_terms(merged.config, ids.numel()))
    tol = rel_tol(decoder_terms(merged.config, ids.numel())) * want.abs().max().item()
    assert (base - want).abs().max().item() > 100 * tol  # the adapter does change the output
    assert AutoTokenizer.from_pretrained(target)("hi")["input_ids"] == [6004]
    assert json.loads((target / "prompt_format.json").read_text())["prompt_field"] == "instruction"
    assert (target / "newtune.yml").exists() and not list(tmp_path.glob(".tmp-merge-*"))


def test_default_target_is_output_dir_merged(lora_run):
    from pathlib import Path

    cfg, _ = lora_run
    assert run_merge(cfg, quiet(), None) == Path(cfg.train.output_dir) / "merged"


def test_nothing_to_merge_errors(tmp_path, lora_run):
    cfg, _ = lora_run
    empty = cfg.model_copy(update={"train": cfg.train.model_copy(update={"output_dir": str(tmp_path / "none")})})
    with pytest.raises(ModelError, match="holds no adapter"):
        run_merge(empty, quiet(), None)
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    full_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"output_dir": str(full)})})
    with pytest.raises(ModelError, match="holds a fully fine-tuned model"):
        run_merge(full_cfg, quiet(), None)


def test_soft_prompt_cannot_be_merged(lora_run):
    cfg, _ = lora_run
    path = cfg.train.output_dir + "/adapter_config.json"
    conf = json.loads(open(path).read())
    conf["peft_type"] = "PROMPT_TUNING"
    open(path, "w").write(json.dumps(conf))
    with pytest.raises(ModelError) as e:
        run_merge(cfg, quiet(), None)
    assert e.value.problem == "a PROMPT_TUNING adapter cannot be merged into the weights; only LoRA can"
