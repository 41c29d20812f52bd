"""Inference: the prompt is built exactly as in training; answers come from base + adapter, greedily."""

from __future__ import annotations

import io

import pytest
from lora_fixture import make_lora_run
from rich.console import Console

from newtune.data.rowcodec import encode_row
from newtune.data.types import IGNORE
from newtune.errors import ModelError
from newtune.export.artifacts import describe_prompt_format
from newtune.export.infer import generate, run_inference
from newtune.export.prompt import Turn, prompt_ids
from newtune.load import load_config


@pytest.fixture
def lora_run(tmp_path, tiny_model_dir, smol_tok):
    return make_lora_run(tmp_path, tiny_model_dir, smol_tok)

def training_prompt(type_, row, tok):
    enc = encode_row(type_, row, tok)
    n = enc["labels"].index(next(label for label in enc["labels"] if label != IGNORE))
    return enc["input_ids"][:n]


@pytest.mark.parametrize("tok_name", ["smol_tok", "mistral_tok"])
@pytest.mark.parametrize(("type_", "row", "prompt"), [
    ("alpaca", {"instruction": "Name a colour.", "input": "", "output": "Blue."}, "Name a colour."),
    ("alpaca:chatml", {"instruction": "Name a colour.", "output": "Blue."}, "Name a colour."),
    ("alpaca_chat.load_qa", {"question": "Why is the sky blue?", "answer": "Rayleigh."}, "Why is the sky blue?"),
])
def test_instruct_prompt_ids_equal_training_prompt(request, tok_name, type_, row, prompt):
    tok = request.getfixturevalue(tok_name)
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": type_}]})
    fmt = describe_prompt_format(cfg.data, tok)
    assert prompt_ids(fmt, [Turn("user", prompt)], tok, cfg.data) == training_prompt(type_, row, tok)


def test_alpaca_prompt_text_and_bos(mistral_tok):
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}]})
    ids = prompt_ids(describe_prompt_format(cfg.data, mistral_tok), [Turn("user", "Say hi")], mistral_tok, cfg.data)
    assert ids[0] == 1  # Mistral's BOS, as in training
    assert mistral_tok.decode(ids[1:]) == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nSay hi\n\n### Response:\n")


def test_chat_prompt_uses_template_and_default_system(smol_tok):
    fmt = {"kind": "chat", "type": "chat_template", "system": "Talk like a pirate."}
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "completion"}]})
    ids = prompt_ids(fmt, [Turn("user", "hi"), Turn("assistant", "Arr."), Turn("user", "bye")], smol_tok, cfg.data)
    assert smol_tok.decode(ids) == ("<|im_start|>system\nTalk like a pirate.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                                    "<|im_start|>assistant\nArr.<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n"
                                    "<|im_start|>assistant\n")


def test_chat_prompt_sees_chat_template_kwargs(smol_tok):
    from newtune.data.chat import named_template

    tok = smol_tok.__class__.from_pretrained(smol_tok.name_or_path)
    tok.chat_template = named_template("qwen3")
    fmt = {"kind": "chat", "type": "chat_template", "system": None}
    raw = {"datasets": [{"path": "d.jsonl", "type": "completion"}]}
    thinking = tok.decode(prompt_ids(fmt, [Turn("user", "hi")], tok, load_config(None, raw=raw).data))
    off = load_config(None, raw={**raw, "chat_template_kwargs": {"enable_thinking": False}}).data
    assert thinking.endswith("<|im_start|>assistant\n<think>\n\n")
    assert tok.decode(prompt_ids(fmt, [Turn("user", "hi")], tok, off)).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_raw_prompt_is_the_text(mistral_tok):
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "completion"}]})
    ids = prompt_ids({"kind": "raw", "type": "completion"}, [Turn("user", "Once upon")], mistral_tok, cfg.data)
    assert ids == [1, 5713, 3714]


def quiet():
    return Console(file=io.StringIO(), width=200)


def inference_and_generate(cfg, model, tok) -> tuple[str, str, list[int]]:
    """`newtune inference`'s greedy answer to "Name a colour.", `generate` on `model` from the same prompt
    ids, and those ids."""
    [answer] = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=6,
                             temperature=0.0, base=False)
    ids = prompt_ids(describe_prompt_format(cfg.data, tok), [Turn("user", "Name a colour.")], tok, cfg.data)
    return answer, generate(model.eval(), tok, ids, max_new_tokens=6, temperature=0, stop_ids=[tok.eos_token_id]), ids


def test_answer_is_base_plus_adapter_greedy(lora_run, smol_tok):
    cfg, peft = lora_run
    printed = Console(file=io.StringIO(), width=200)
    [answer] = run_inference(cfg, quiet(), printed, prompt="Name a colour.", chat=False, max_new_tokens=6,
                             temperature=0.0, base=False)
    ids = prompt_ids(describe_prompt_format(cfg.data, smol_tok), [Turn("user", "Name a colour.")], smol_tok, cfg.data)
    peft.eval()
    expected = generate(peft, smol_tok, ids, max_new_tokens=6, temperature=0, stop_ids=[smol_tok.eos_token_id])
    assert answer == expected and answer
    assert printed.file.getvalue() == answer + "\n"  # streamed to the output console
    [base_answer] = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=6,
                                  temperature=0.0, base=True)
    with peft.disable_adapter():
        assert base_answer == generate(peft, smol_tok, ids, max_new_tokens=6, temperature=0, stop_ids=[smol_tok.eos_token_id])
    assert base_answer != answer


def test_prompt_from_stdin(lora_run, monkeypatch):
    cfg, _ = lora_run
    monkeypatch.setattr("sys.stdin", io.StringIO("Name a colour.\n"))
    from_stdin = run_inference(cfg, quiet(), quiet(), prompt=None, chat=False, max_new_tokens=4, temperature=0.0, base=False)
    given = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=4, temperature=0.0, base=False)
    assert from_stdin == given


def test_chat_keeps_history_until_empty_line(lora_run, monkeypatch):
    cfg, _ = lora_run
    console = quiet()
    lines = iter(["Name a colour.", "And another?", ""])
    monkeypatch.setattr(console, "input", lambda prompt="": next(lines))
    replies = run_inference(cfg, console, quiet(), prompt=None, chat=True, max_new_tokens=3, temperature=0.0, base=False)
    assert len(replies) == 2


def test_no_trained_model_is_a_model_error(tmp_path, tiny_model_dir):
    cfg = load_config(None, raw={"base_model": str(tiny_model_dir), "datasets": [{"path": "d.jsonl", "type": "alpaca"}],
                                 "output_dir": str(tmp_path / "never-trained")})
    with pytest.raises(ModelError) as e:
        run_inference(cfg, quiet(), quiet(), prompt="hi", chat=False, max_new_tokens=2, temperature=0.0, base=False)
    assert e.value.where == "output_dir" and "holds no trained model" in e.value.problem
    assert "--base" in e.value.hint


def test_full_fine_tune_output_dir(tmp_path, tiny_model_dir, smol_tok):
    """output_dir holding full weights (no adapter) answers with those weights, not the base model's."""
    import torch
    from transformers import AutoModelForCausalLM

    from newtune.export.artifacts import save_artifacts

    cfg = load_config(None, raw={"base_model": str(tiny_model_dir), "datasets": [{"path": "d.jsonl", "type": "alpaca"}],
                                 "output_dir": str(tmp_path / "out")})
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.mul_(-3.0)
    model.save_pretrained(tmp_path / "out")
    save_artifacts(tmp_path / "out", cfg, smol_tok)
    answer, expected, _ = inference_and_generate(cfg, model, smol_tok)
    assert answer == expected


def greedy_by_forward(model, ids: list[int], n: int, stop: int, **forward_kw) -> list[int]:
    """Greedy decoding by the model's own forward on the whole sequence each step (no cache, no generate)."""
    import torch

    seq, new = list(ids), []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=torch.tensor([seq]), **forward_kw).logits[0, -1].argmax())
            if nxt == stop:
                break
            seq.append(nxt)
            new.append(nxt)
    return new


@pytest.fixture(scope="module")
def varied_model_dir(tmp_path_factory, smol_tok):
    """A tiny Llama whose weights are drawn wide enough that greedy answers vary with the context
    (the default 0.02 init answers '\\n' to everything, with or without a soft prompt)."""
    import torch

    from conftest import tiny_model

    model = tiny_model(len(smol_tok))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
    d = tmp_path_factory.mktemp("varied_model")
    model.save_pretrained(d)
    smol_tok.save_pretrained(d)
    return d


SOFT_PROMPTS = [("prompt_tuning", {}), ("prefix_tuning", {}), ("p_tuning", {"peft_encoder_hidden_size": 32}),
                ("multitask_prompt_tuning", {"peft_num_tasks": 2, "task_id": 1})]


@pytest.mark.parametrize(("kind", "keys"), SOFT_PROMPTS, ids=[k for k, _ in SOFT_PROMPTS])
def test_soft_prompt_inference_uses_the_prompt(tmp_path, varied_model_dir, smol_tok, kind, keys):
    """Every soft prompt kind answers as its own forward decodes greedily, and not as the base model does
    (peft's generate drops a prefix and repeats virtual tokens under transformers 5)."""
    import torch
    from peft import get_peft_model

    from newtune.export.artifacts import save_artifacts
    from newtune.model.adapters import soft_prompt_config
    from newtune.model.load import load_model

    keys = dict(keys)
    dataset = {"path": "d.jsonl", "type": "alpaca", **({"task_id": keys.pop("task_id")} if "task_id" in keys else {})}
    cfg = load_config(None, raw={"base_model": str(varied_model_dir), "datasets": [dataset],
                                 "adapter": kind, "peft_num_virtual_tokens": 4, "output_dir": str(tmp_path / "out"), **keys})
    base = load_model(cfg.model, smol_tok, dtype=torch.float32)
    peft = get_peft_model(base, soft_prompt_config(base, cfg.adapter, smol_tok))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in peft.prompt_encoder.parameters():
            p.normal_(0, 1.0)
    peft.save_pretrained(tmp_path / "out")
    save_artifacts(tmp_path / "out", cfg, smol_tok)
    [answer] = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=8,
                             temperature=0.0, base=False)
    [base_answer] = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=8,
                                  temperature=0.0, base=True)
    ids = prompt_ids(describe_prompt_format(cfg.data, smol_tok), [Turn("user", "Name a colour.")], smol_tok, cfg.data)
    # multitask: the dataset's task_id (1) answers by default, and --task-id picks another task
    task = {"task_ids": torch.tensor([1])} if kind == "multitask_prompt_tuning" else {}
    expected = greedy_by_forward(peft.eval(), ids, 8, smol_tok.eos_token_id, **task)
    assert answer == smol_tok.decode(expected, skip_special_tokens=True)
    assert answer != base_answer
    if task:
        [task0] = run_inference(cfg, quiet(), quiet(), prompt="Name a colour.", chat=False, max_new_tokens=8,
                                temperature=0.0, base=False, task_id=0)
        expected0 = greedy_by_forward(peft, ids, 8, smol_tok.eos_token_id, task_ids=torch.tensor([0]))
        assert task0 == smol_tok.decode(expected0, skip_special_tokens=True) and task0 != answer
