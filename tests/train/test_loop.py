"""The training loop on the tiny model: it learns, is reproducible, and accumulation is exact."""

from __future__ import annotations

import io
import json
import math
import re

import pytest
import torch
from rich.console import Console
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.errors import NewtuneError
from newtune.train.loop import run_training
from newtune.train.loss import unwrap_model
from newtune.train.metrics import read_metrics
from newtune.train.neftune import NEFTune
from newtune.train.schedule import make_schedule
from tolerances import training_rel_tol


def initial_model(cfg, tok_dir):
    """The model as training starts: same seed, same adapter init."""
    from accelerate.utils import set_seed

    from newtune.data.tokenizer import tokenizer_for
    from newtune.model.adapters import apply_adapter
    from newtune.model.load import load_model

    tok = tokenizer_for(cfg.model)
    set_seed(cfg.train.seed)
    return apply_adapter(load_model(cfg.model, tok, dtype=torch.float32), cfg.adapter, tok)


def test_lora_overfits_and_changes_exactly_the_trainable_parameters(tiny_run, tiny_model_dir):
    cfg, console = tiny_run(rows=4, num_epochs=10, learning_rate=0.2, lr_scheduler="constant", micro_batch_size=4)
    result = run_training(cfg, console)
    got = losses(cfg.train.output_dir)
    assert result.steps == 10 and len(got) == 10
    # The tiny model's frozen tied embeddings cap how far LoRA alone can go (about 10.8 → 10.4).
    assert got[-1] < got[0] - 0.3 and max(got[-3:]) < min(got[:3]), got
    before = dict(initial_model(cfg, tiny_model_dir).named_parameters())
    trained = frozen = 0
    for name, p in result.model.named_parameters():
        if p.requires_grad:
            trained += 1
            assert not torch.equal(p.detach(), before[name]), f"{name} did not change"
        else:
            frozen += 1
            assert torch.equal(p.detach(), before[name]), f"frozen {name} changed"
    assert trained == 2 * 7 * 2 and frozen > 0  # lora_A and lora_B of 7 linear layers in 2 blocks
    out = cfg.train.output_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "newtune.yml",
                 "metrics.jsonl", "loss.png"):
        assert (result.output_dir / name).is_file(), name
    assert str(out) == str(result.output_dir)


def test_same_seed_same_losses_and_another_seed_differs(tiny_run):
    a = run_training(*tiny_run(out="a", num_epochs=2))
    b = run_training(*tiny_run(out="b", num_epochs=2))
    c = run_training(*tiny_run(out="c", num_epochs=2, seed=4))
    assert a.steps == 8
    assert losses(a.output_dir) == losses(b.output_dir)
    assert losses(a.output_dir) != losses(c.output_dir)


def test_micro_batch_4_equals_accumulation_4(tiny_run):
    one = run_training(*tiny_run(out="mb4", micro_batch_size=4, gradient_accumulation_steps=1, num_epochs=2))
    four = run_training(*tiny_run(out="ga4", micro_batch_size=1, gradient_accumulation_steps=4, num_epochs=2))
    assert one.steps == four.steps == 4
    # One batch of 4 against 4 micro-batches: the same sums in another order and blocking, over 4 steps.
    rel = training_rel_tol(unwrap_model(one.model).config, tokens=4 * 64, steps=4)
    assert losses(four.output_dir) == pytest.approx(losses(one.output_dir), rel=rel)
    assert one.trained_tokens == four.trained_tokens


def test_metrics_lines_and_eval(tiny_run):
    cfg, console = tiny_run(rows=10, val_set_size=2, evals_per_epoch=2, num_epochs=1, warmup_steps=2,
                            lr_scheduler="linear", max_grad_norm=0.5)
    result = run_training(cfg, console)
    recs = read_metrics(cfg.train.output_dir)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]  # 8 train rows / micro_batch_size 2
    assert [r["lr"] for r in recs] == pytest.approx([0.0, 0.005, 0.01, 0.005])  # float64 schedule: a few ulps
    assert [r["epoch"] for r in recs] == [0.25, 0.5, 0.75, 1.0]
    assert [("eval_loss" in r) for r in recs] == [False, True, False, True]  # every 4 // 2 steps
    for r in recs:
        assert {"loss", "grad_norm", "tokens", "trained_tokens", "tokens_per_s"} <= r.keys()
        assert r["grad_norm"] > 0
    assert recs[-1]["eval_perplexity"] == math.exp(recs[-1]["eval_loss"])  # exact: float64 through JSON and exp
    assert result.eval_loss == recs[-1]["eval_loss"]
    assert recs[-1]["trained_tokens"] == result.trained_tokens
    assert recs[-1]["tokens"] == result.tokens > result.trained_tokens


@pytest.mark.parametrize("keys", [{"evals_per_epoch": 0}, {"eval_strategy": "no", "eval_steps": 1}])
def test_evals_per_epoch_0_and_eval_strategy_no_never_evaluate(tiny_run, keys):
    cfg, console = tiny_run(rows=10, val_set_size=2, max_steps=2, **keys)
    result = run_training(cfg, console)
    assert result.eval_loss is None
    assert not any("eval_loss" in r for r in read_metrics(cfg.train.output_dir))


def test_eval_strategy_epoch_evaluates_at_each_epoch_end(tiny_run):
    cfg, _ = tiny_run(eval_strategy="epoch")
    assert make_schedule(cfg, n_micro=8, world=1, has_eval=True).eval_every == 8


def test_max_steps_runs_past_one_epoch(tiny_run):
    cfg, console = tiny_run(max_steps=6)
    result = run_training(cfg, console)
    assert result.steps == 6
    assert [r["epoch"] for r in read_metrics(cfg.train.output_dir)][-1] == 1.5


def test_schedule_counts(tiny_run):
    cfg, _ = tiny_run(num_epochs=1.5, gradient_accumulation_steps=2, saves_per_epoch=2, eval_steps=3, save_strategy=None)
    s = make_schedule(cfg, n_micro=5, world=1, has_eval=True)
    assert (s.steps_per_epoch, s.total_steps, s.save_every, s.eval_every, s.save_each_epoch) == (3, 5, 1, 3, False)
    s = make_schedule(cfg, n_micro=5, world=2, has_eval=False)  # several processes drop the short last step
    assert (s.steps_per_epoch, s.eval_every) == (1, None)
    cfg, _ = tiny_run(save_strategy=None)
    assert make_schedule(cfg, n_micro=4, world=1, has_eval=False).save_each_epoch is True  # axolotl's default


def test_neftune_noise_only_while_training():
    torch.manual_seed(0)
    model = torch.nn.Module()
    emb = torch.nn.Embedding(10, 4)
    model.get_input_embeddings = lambda: emb
    neftune = NEFTune(model, alpha=5.0)
    ids = torch.tensor([[1, 2, 3]])
    clean = emb.weight[ids]
    emb.train()
    noisy = emb(ids)
    bound = 5.0 / math.sqrt(3 * 4)
    assert not torch.equal(noisy, clean) and (noisy - clean).abs().max() <= bound
    assert (noisy - clean).abs().max() > bound / 2
    # A flat batch is scaled by the width of the padded layout it replaces, not by its own length.
    neftune.width = 300
    assert (emb(ids) - clean).abs().max() <= 5.0 / math.sqrt(300 * 4)
    emb.eval()
    assert torch.equal(emb(ids), clean)


def test_out_of_memory_says_what_to_change(tiny_run, monkeypatch):
    import newtune.train.loss as loss_mod

    def oom(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loss_mod, "lm_loss_sum", oom)
    with pytest.raises(NewtuneError, match="out of memory at step 1") as e:
        run_training(*tiny_run())
    assert e.value.where == "micro_batch_size"
    assert "gradient_checkpointing: true" in e.value.hint and "sequence_len" in e.value.hint


@pytest.mark.parametrize(("keys", "package"), [
    ({"use_tensorboard": True}, "tensorboard"), ({"wandb_project": "p"}, "wandb"),
    ({"mlflow_tracking_uri": "file:///tmp/x"}, "mlflow"),
])
def test_trackers_asked_for_but_missing_are_user_errors(tiny_run, monkeypatch, keys, package):
    import importlib.util

    from newtune.train import metrics

    real = importlib.util.find_spec
    monkeypatch.setattr(metrics.importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(NewtuneError, match=f"needs the {package} package") as e:
        run_training(*tiny_run(**keys))
    assert e.value.where == next(iter(keys)) and f"pip install {package}" in e.value.hint


def test_each_epoch_is_packed_once(tiny_run, monkeypatch):
    """The schedule, the packing report and the loop share epoch 0's plan; each later epoch is packed once."""
    from newtune.train import batches

    seeds = []
    real = batches.pack_lengths
    monkeypatch.setattr(batches, "pack_lengths", lambda *a, **k: seeds.append(k.get("seed")) or real(*a, **k))
    result = run_training(*tiny_run(out="epochs", micro_batch_size=1, sample_packing=True, num_epochs=3, data_seed=11))
    assert seeds == [11, 12, 13]  # data_seed + epoch, one packing each
    assert result.steps == 3 * int(result.packing.split(" → ")[1].split()[0])  # every epoch: the reported bins


def test_sample_packing_trains_the_same_tokens(tiny_run):
    padded = run_training(*tiny_run(out="padded", micro_batch_size=1))
    packed = run_training(*tiny_run(out="packed", micro_batch_size=1, sample_packing=True))
    # 8 rows of ~16 tokens pack into 64-token bins: fewer steps, the same trained tokens.
    assert packed.steps < padded.steps == 8
    assert packed.trained_tokens == padded.trained_tokens and packed.tokens == padded.tokens
    assert all(math.isfinite(x) for x in losses(packed.output_dir))
    # the packing report: printed at the start, in the closing summary and in train_summary.json
    bins = packed.steps  # micro_batch_size 1, accumulation 1: one bin per step
    assert re.fullmatch(rf"packing: 8 rows → {bins} bins of 64 tokens, \d+\.\d% full \(padded to sequence_len: \d+\.\d%\)",
                        packed.packing)
    summary = json.loads((packed.output_dir / "train_summary.json").read_text())
    assert summary["packing"] == packed.packing and summary["steps"] == packed.steps
    assert not padded.packing


def test_log_file_gets_one_plain_line_per_logging_step(tiny_run):
    """Without a terminal (nohup, CI, `> log`): the precision line, then a plain line per logging step."""
    cfg, log = tiny_run(out="log", logging_steps=2)
    result = run_training(cfg, log)
    text = log.file.getvalue()
    assert text.splitlines()[0] == ("precision: fp32 (auto: NEWTUNE_CPU_BF16=0 in the environment; set bf16: true "
                                    "to use it anyway)")
    steps = [line for line in text.splitlines() if line.startswith("step ")]
    assert len(steps) == 2, text
    pattern = (r"step (\d)/4  epoch (\S+)  loss (\S+)  lr (\S+)  grad_norm (\S+)  (\S+) tok/s  "
               r"ETA \d+:\d\d:\d\d")
    records = read_metrics(result.output_dir)
    for line, rec in zip(steps, records, strict=True):
        m = re.fullmatch(pattern, line)
        assert m, line
        assert (int(m[1]), float(m[2]), float(m[3])) == (rec["step"], rec["epoch"], round(rec["loss"], 4))
        assert m[5] == f"{rec['grad_norm']:.3f}"  # the log prints the recorded value to 3 decimals
    assert "━" not in text  # no progress bar in a log file
    summary = json.loads((result.output_dir / "train_summary.json").read_text())
    assert summary["precision"] == text.splitlines()[0]


def test_terminal_gets_the_progress_bar_not_plain_lines(tiny_run):
    cfg, _ = tiny_run(out="tty")
    tty = Console(file=io.StringIO(), width=120, force_terminal=True)
    run_training(cfg, tty)
    text = tty.file.getvalue()
    assert "━" in text and "tok/s" in text
    assert not [line for line in text.splitlines() if line.startswith("step ")]


def test_full_finetune_with_gradient_checkpointing_resumes_exactly(tiny_run, tmp_path):
    import json
    import shutil

    keys = {"adapter": None, "gradient_checkpointing": True, "save_strategy": "steps", "save_steps": 2,
            "learning_rate": 0.001}
    full = run_training(*tiny_run(out="full", **keys))
    assert (full.output_dir / "model.safetensors").is_file() and not (full.output_dir / "adapter_config.json").exists()
    assert full.model.is_activation_checkpointing
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full.output_dir / "checkpoint-2", part / "checkpoint-2")
    (part / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in read_metrics(full.output_dir)[:2]))
    resumed = run_training(*tiny_run(out="part", resume_from_checkpoint=str(part / "checkpoint-2"), **keys))
    assert losses(part) == losses(full.output_dir) and len(losses(part)) == 4
    for (name, a), (_, b) in zip(full.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("reentrant", [False, True])
def test_lora_with_gradient_checkpointing_trains_like_without(tiny_run, reentrant, monkeypatch):
    import transformers.modeling_utils as mu

    calls = []
    real = mu.checkpoint  # what transformers' activation checkpointing calls per decoder layer
    monkeypatch.setattr(mu, "checkpoint", lambda *a, **k: calls.append(k.get("use_reentrant")) or real(*a, **k))
    plain = run_training(*tiny_run(out="plain", max_steps=3))
    kept = run_training(*tiny_run(out="kept", max_steps=3, gradient_checkpointing=True,
                                  gradient_checkpointing_kwargs={"use_reentrant": reentrant}))
    assert set(calls) == {reentrant}  # each decoder layer went through torch's checkpoint as asked
    # Recomputing runs the same kernels on the same shapes: the same sums in the same order, bit for bit.
    assert losses(kept.output_dir) == losses(plain.output_dir)


def test_logging_steps_average_the_steps_between_logs(tiny_run):
    every = run_training(*tiny_run(out="every"))
    pairs = run_training(*tiny_run(out="pairs", logging_steps=2))
    one, two = losses(every.output_dir), losses(pairs.output_dir)
    assert [r["step"] for r in read_metrics(pairs.output_dir)] == [2, 4]
    # The same (deterministic) run; the logged mean is taken in float32: one rounding (2**-24 relative).
    assert two == pytest.approx([(one[0] + one[1]) / 2, (one[2] + one[3]) / 2], rel=4 * 2**-24)


def test_bf16_true_trains_in_bf16_on_cpu(tiny_run):
    result = run_training(*tiny_run(bf16=True, max_steps=2))
    dtypes = {p.dtype for p in result.model.parameters() if not p.requires_grad}
    assert dtypes == {torch.bfloat16}
    assert all(math.isfinite(x) for x in losses(result.output_dir)) and result.steps == 2


@pytest.mark.parametrize("master", [False, True])
def test_full_finetune_in_bf16_says_where_master_weights_live(tiny_run, master):
    cfg, log = tiny_run(out=f"full-{master}", adapter=None, lora_target_linear=False, bf16=True,
                        fp32_master_weights=master, max_steps=2)
    result = run_training(cfg, log)
    assert {p.dtype for p in result.model.parameters()} == {torch.float32 if master else torch.bfloat16}
    assert all(math.isfinite(x) for x in losses(result.output_dir))
    first = log.file.getvalue().splitlines()[0]
    assert first == ("precision: bf16 (bf16: true; master weights and optimizer state fp32 (fp32_master_weights))"
                     if master else "precision: bf16 (bf16: true; weights and optimizer state bf16 too "
                     "(fp32_master_weights: true keeps them in fp32))")


def test_pretraining_dataset_trains_exactly_max_steps_of_streamed_rows(tiny_run, tmp_path):
    import json

    texts = tmp_path / "corpus.jsonl"
    texts.write_text("".join(json.dumps({"text": f"story {i}: " + "lorem ipsum dolor " * (i % 5 + 1)}) + "\n"
                             for i in range(40)))
    cfg, console = tiny_run(out="pre", datasets=None, pretraining_dataset=[{"path": str(texts)}],
                            max_steps=3, micro_batch_size=2, sequence_len=32)
    result = run_training(cfg, console)
    assert result.steps == 3 and not result.interrupted
    got = losses(result.output_dir)
    assert len(got) == 3 and all(math.isfinite(x) for x in got)
    assert all("epoch" not in r for r in read_metrics(result.output_dir))  # a stream has no epochs
    # 3 steps x 2 rows of 32 tokens, every token of a full row real (rows are packed from the stream)
    assert result.tokens <= 3 * 2 * 32 and result.tokens > 3 * 2 * 16


@pytest.mark.parametrize("packing", [False, True])
def test_cpu_fast_paths_train_like_transformers_and_peft(tiny_run, monkeypatch, packing):
    import newtune.model.patches as K

    # No dropout: flat batches draw dropout masks in another shape (tests/model/test_patches.py covers it).
    keys = {"sample_packing": packing, "max_steps": 4, "num_epochs": 2, "lora_dropout": 0.0}
    fast = run_training(*tiny_run(out="fast", **keys))
    assert unwrap_model(fast.model).config._attn_implementation == K.VARLEN
    monkeypatch.setattr(K, "enable_fast_paths", lambda model, device_type, adapter_cfg=None: [])
    plain = run_training(*tiny_run(out="plain", **keys))
    assert unwrap_model(plain.model).config._attn_implementation == "sdpa"
    # Per-document attention and fused LoRA sum in another order than SDPA and peft: over 4 steps.
    rel = training_rel_tol(unwrap_model(plain.model).config, tokens=2 * 64, steps=4)
    assert losses(fast.output_dir) == pytest.approx(losses(plain.output_dir), rel=rel)
    assert fast.tokens == plain.tokens and fast.trained_tokens == plain.trained_tokens


def test_ctrl_c_twice_at_once_is_one_request_twice_apart_aborts(monkeypatch):
    from newtune.train import stopping

    now = [100.0]
    monkeypatch.setattr(stopping.time, "monotonic", lambda: now[0])
    flag = stopping.StopFlag()
    try:
        flag.handle()
        now[0] += 0.01  # the launcher's forwarded copy of the same Ctrl-C
        flag.handle()
        assert flag.hit
        now[0] += 2.0  # the user pressing Ctrl-C again
        with pytest.raises(KeyboardInterrupt):
            flag.handle()
    finally:
        flag.restore()


def test_loss_plot_title_names_config_model_and_adapter():
    from newtune.train.metrics import plot_title

    assert plot_title("examples/quickstart.yml", None, "lora", "out") == "quickstart.yml · SmolLM2-135M-Instruct (embedded) · lora"
    assert plot_title(None, "/models/Llama-3-8B", None, "runs/full") == "full · Llama-3-8B · full fine-tune"
