"""Training-step throughput on CPU: LoRA on the embedded SmolLM2-135M, unpacked vs packed. Prints; asserts nothing.

    .venv/bin/python bench/train.py [--steps 6] [--levers] [--full] [--axolotl-venv /tmp/axolotl-venv]

Prints the CPU, this CPU's fp32 matmul peak (measured in the same run, same threads), real tokens/s
(padding excluded) per mode, peak RSS, and the fraction of peak at 4·N FLOPs/token (LoRA; 6·N full).
Batches come from the quickstart data through newtune's own plan and collate code, and the model gets
the same fast paths as `newtune train` (model/patches.py: per-document attention, fused LoRA layers).
`--levers` adds the same steps without those fast paths (transformers' masked SDPA over padded or
packed rows, peft's LoRA forward), the HF full-logits loss, and 1 thread; `--compile` adds packed steps
with each decoder layer compiled (torch.compile; the first step pays the compile). With
`--axolotl-venv` axolotl trains the same data with the same settings in a subprocess
(bench/axolotl_train.py counts its real tokens) and both real-token rates are shown, warmup included
on both sides (axolotl's train_runtime covers all its steps).

OpenMP waiting is set as `newtune` sets it (newtune/threads.py: brief spinning on a free CPU, sleeping
when the load average says the CPU is shared; OMP_WAIT_POLICY / GOMP_SPINCOUNT override), and axolotl
runs with the same environment.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newtune.threads import configure_openmp  # noqa: E402

OPENMP = configure_openmp()  # read once, when torch loads its OpenMP runtime

import torch  # noqa: E402

from newtune.data.pack import pack_lengths, packing_efficiency  # noqa: E402
from newtune.data.pipeline import prepare  # noqa: E402
from newtune.load import load_config  # noqa: E402
from newtune.model.adapters import apply_adapter  # noqa: E402
from newtune.model.load import ensure_embedded_converted, load_model, load_tokenizer_for  # noqa: E402
from newtune.model.patches import enable_fast_paths  # noqa: E402
from newtune.train import batches as B  # noqa: E402
from newtune.train.loss import lm_loss_sum, unwrap_model  # noqa: E402
from newtune.train.optim import build_optimizer  # noqa: E402
from newtune.train.precision import cpu_model_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "data" / "quickstart.jsonl"
WORDS = ("the model learns to answer questions about data training tokens with short clear sentences and "
         "examples from many topics such as science history cooking travel music code math language").split()


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 6) -> float:
    """Best fp32 GEMM rate over a few n×n products with `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def chat_rows(n: int, seed: int = 0) -> list[dict]:
    """Chat rows whose lengths follow a lognormal mix (median ~150 tokens, a few over 512)."""
    rng = random.Random(seed)

    def text(k: float) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(2, int(k))))

    rows = []
    for _ in range(n):
        turns = [{"role": "user", "content": text(rng.lognormvariate(3.3, 0.7))},
                 {"role": "assistant", "content": text(rng.lognormvariate(4.2, 0.8))}]
        rows.append({"messages": turns})
    return rows


def make_config(data_file: Path, work: Path, full: bool) -> dict:
    raw = {"datasets": [{"path": str(data_file), "type": "chat_template"}], "sequence_len": 512,
           "micro_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 1e-4, "optimizer": "adamw_torch",
           "dataset_prepared_path": str(work / "prepared"), "val_set_size": 0}
    if not full:
        raw |= {"adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_linear": True}
    return raw


def run_steps(model, batches, steps: int, warmup: int, plain_loss: bool, train_cfg) -> tuple[float, int, float]:
    """Seconds and real tokens over `steps` timed optimizer steps (after `warmup` untimed ones),
    and the seconds of all steps, warmup included (what axolotl's train_runtime covers)."""
    opt = build_optimizer(model, train_cfg, "cpu")  # the optimizer `newtune train` builds
    tokens, start, first = 0, None, time.perf_counter()
    for i, batch in enumerate(batches[: warmup + steps]):
        if i == warmup:
            start, tokens = time.perf_counter(), 0
        if plain_loss:  # the reference: full-vocabulary logits for every position, mean CE
            out = model(**batch.model_inputs(), labels=batch.labels)
            (out.loss).backward()
        else:
            loss, n = lm_loss_sum(model, batch)
            (loss / max(n, 1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += batch.n_tokens
    end = time.perf_counter()
    return end - start, tokens, end - first


def axolotl_run(venv: Path, raw: dict, steps: int, packed: bool, work: Path, pad_id: int,
                timeout: float = 900) -> tuple[float, int] | None:
    """axolotl's seconds over all `steps` steps (its train_runtime) and the real tokens it trained on."""
    cfg = {k: v for k, v in raw.items() if k != "dataset_prepared_path"}
    cfg |= {"base_model": str(ensure_embedded_converted()), "max_steps": steps, "optimizer": "adamw_torch",
            "output_dir": str(work / f"axo-out-{packed}"), "dataset_prepared_path": str(work / f"axo-prep-{packed}"),
            "sample_packing": packed, "pad_to_sequence_len": packed, "save_strategy": "no", "logging_steps": 1,
            "bf16": False, "fp16": False, "tf32": False, "flash_attention": False, "sdp_attention": True,
            "dataloader_num_workers": 0, "dataset_num_proc": 1, "num_epochs": 1, "seed": 0,
            # axolotl turns its Triton LoRA kernels on by default; they allocate on CUDA only.
            "lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False,
            "lora_embedding_kernel": False}
    path = work / f"axolotl-{packed}.yml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true",
           "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1",  # its telemetry retries the network for minutes
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    try:
        proc = subprocess.run([str(venv / "bin" / "python"), str(ROOT / "bench" / "axolotl_train.py"), str(path),
                               str(pad_id)],
                              env=env, capture_output=True, text=True, cwd=work, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  axolotl (packed={packed}) ran past {timeout} s; stopped")
        return None
    out = proc.stdout + proc.stderr
    runtime = re.search(r"'train_runtime': '?([\d.]+)", out)
    tokens = re.search(r"REAL_TOKENS (\d+)", out)
    if proc.returncode != 0 or not runtime or not tokens:
        print(f"  axolotl (packed={packed}) failed, exit {proc.returncode}; last lines:")
        print("   " + "\n   ".join(out.strip().splitlines()[-8:]))
        return None
    return float(runtime.group(1)), int(tokens.group(1))


def disable_fast_paths(model) -> None:
    """Back to transformers' SDPA and peft's LoRA forward (what enable_fast_paths replaced)."""
    unwrap_model(model).set_attn_implementation("sdpa")
    for module in model.modules():
        module.__dict__.pop("forward", None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6, help="timed optimizer steps per mode")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rows", type=int, default=400, help="generated chat rows when there is no quickstart data")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="physical cores")
    ap.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA r=8")
    ap.add_argument("--levers", action="store_true", help="also measure the full-logits loss and 1 thread")
    ap.add_argument("--compile", action="store_true", help="also measure packed steps with each decoder layer compiled")
    ap.add_argument("--axolotl-venv", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="newtune-bench-"))
    data_file = QUICKSTART
    if not data_file.exists():
        data_file = work / "chat.jsonl"
        data_file.write_text("".join(json.dumps(r) + "\n" for r in chat_rows(args.rows)))
    raw = make_config(data_file, work, args.full)
    cfg = load_config(None, raw=raw)
    tok = load_tokenizer_for(cfg.model)
    rows = prepare(cfg.data, tok, seed=0).train
    lengths = rows.lengths()
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    peak = matmul_peak_gflops(args.threads)
    model = apply_adapter(load_model(cfg.model, tok, dtype=torch.float32), cfg.adapter, tok)
    model.train()
    # N: the base model's parameters (tied embeddings once: the head's matmul uses them), LoRA excluded.
    n_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    flops_per_token = (6 if args.full else 4) * n_params
    need = args.warmup + args.steps

    def batches(packed: bool, flat: bool) -> list:  # newtune's own epoch plan and collate, as in `newtune train`
        plan = B.epoch_plan(lengths, batch_size=2, packed=packed, capacity=512, seed=0)[:need]
        return [B.collate(rows, m, packed=packed, pad_id=pad_id, pad_to=None, flatten=flat) for m in plan]

    print(f"cpu: {cpu_model_name()} | threads {args.threads} | torch {torch.__version__} | load average "
          f"{os.getloadavg()[0]:.1f} | {OPENMP}")
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s | model params N={n_params / 1e6:.1f}M | "
          f"{'full 6N' if args.full else 'LoRA r=8 4N'} = {flops_per_token / 1e9:.2f} GFLOP/token")
    padded = batches(False, False)
    print(f"data: {len(rows)} rows from {data_file.name}, mean {lengths.mean():.0f} tokens; packing efficiency "
          f"{packing_efficiency(lengths, pack_lengths(lengths, 512, seed=0), 512):.2%}; padded batches' real-token "
          f"share {sum(b.n_tokens for b in padded) / sum(b.input_ids.numel() for b in padded):.1%}")
    fast = enable_fast_paths(model, "cpu")
    print(f"fast paths: {', '.join(fast) or 'none'}")
    modes = [("unpacked", False, True, False, args.threads), ("packed (bins of 512)", True, True, False, args.threads)]
    if args.levers:
        modes += [("unpacked, 1 thread", False, True, False, 1),
                  ("unpacked, HF full-logits loss", False, True, True, args.threads),
                  ("unpacked, padded, no fast paths", False, False, False, args.threads),
                  ("packed, masked, no fast paths", True, False, False, args.threads)]
    results = {}
    for name, packed, fast_on, plain, threads in modes:
        if not fast_on:
            disable_fast_paths(model)
        torch.set_num_threads(threads)
        secs, toks, all_secs = run_steps(model, batches(packed, fast_on), args.steps, args.warmup, plain, cfg.train)
        rate = toks / secs
        results[name] = all_secs
        print(f"{name:32} {rate:8.0f} real tokens/s  {secs / args.steps:6.2f} s/step  "
              f"{rate * flops_per_token / (peak * 1e9):6.1%} of peak")
    torch.set_num_threads(args.threads)
    if args.compile:  # regional compilation: one graph per layer, reused by all 30; hooks outside stay eager
        enable_fast_paths(model, "cpu")
        for layer in unwrap_model(model).get_decoder().layers:
            layer.compile()
        secs, toks, all_secs = run_steps(model, batches(True, True), args.steps, args.warmup, False, cfg.train)
        print(f"{'packed, layers compiled':32} {toks / secs:8.0f} real tokens/s  {secs / args.steps:6.2f} s/step  "
              f"{toks / secs * flops_per_token / (peak * 1e9):6.1%} of peak  (compile in warmup: "
              f"{all_secs - secs:.0f} s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.axolotl_venv:
        steps = args.warmup + args.steps
        for packed in (False, True):
            ours_name = "packed (bins of 512)" if packed else "unpacked"
            ours_tokens = sum(b.n_tokens for b in batches(packed, True))
            ours = ours_tokens / results[ours_name]
            axo = axolotl_run(args.axolotl_venv, raw, steps, packed, work, pad_id)
            if axo is not None:
                axo_rate = axo[1] / axo[0]
                print(f"{steps} steps {'packed' if packed else 'unpacked'}, warmup included: axolotl {axo_rate:.0f} "
                      f"real tokens/s ({axo[1]} tokens in {axo[0]:.1f} s); newtune {ours:.0f} ({ours_tokens} in "
                      f"{results[ours_name]:.1f} s) → newtune/axolotl {ours / axo_rate:.2f}×")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
