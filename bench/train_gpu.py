"""GPU training throughput and MFU: a randomly initialised ~1.1B Llama-shape model (no weights needed),
full fine-tune, bf16, sequence_len 2048, sample packing. Prints; asserts nothing.

    .venv/bin/python bench/train_gpu.py [--steps 10] [--warmup 3] [--mbs 4] [--seq 2048] [--peak-tflops N]
                                        [--gradient-checkpointing] [--tiny]

The step is newtune's own: its bin packing, collate (one unpadded row with document boundaries when
flash-attn is installed, else bins under transformers' SDPA mask), loss (LM head on trained positions
only), optimizer (`adamw_torch_fused`) and precision (bf16 weights, bf16 autocast). MFU counts 6·N FLOPs
per token, N = every parameter but the input embedding (a lookup, not a matmul), against the GPU's dense
bf16 peak (known for A100/H100/H200, else pass --peak-tflops). `--tiny` runs a 2-layer model on CPU
in fp32 to check that the script works (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import torch

from newtune.config.train import TrainConfig
from newtune.data.pack import batches_of_bins, pack_lengths, packing_efficiency
from newtune.train.collate import pack_batch
from newtune.train.loss import lm_loss_sum
from newtune.train.optim import build_optimizer

PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0,
                    "H100 NVL": 835.0, "A100": 312.0}


def gpu_peak(name: str) -> float | None:
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops
    return None


def model_config(tiny: bool, seq: int):
    from transformers import LlamaConfig

    if tiny:
        return LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=seq)
    # TinyLlama-1.1B's shape
    return LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                       num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=seq,
                       tie_word_embeddings=False)


def documents(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict]:
    """Random-token rows with lognormal lengths (median ~seq/4, capped at seq), all tokens trained."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(min(seq, max(16, rng.lognormal(np.log(seq / 4), 0.8))))
        ids = rng.integers(3, vocab, length).tolist()
        out.append({"input_ids": ids, "labels": ids})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mbs", type=int, default=4, help="packed sequences per micro-batch")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if it is not in the table")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="2-layer model on CPU: checks the script, numbers mean nothing")
    args = ap.parse_args()
    from transformers import LlamaForCausalLM

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        raise SystemExit("no CUDA GPU: this bench needs one (use --tiny to check the script on CPU)")
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    flash = cuda and importlib.util.find_spec("flash_attn") is not None
    torch.manual_seed(0)
    cfg = model_config(args.tiny, args.seq)
    cfg._attn_implementation = "flash_attention_2" if flash else "sdpa"
    model = LlamaForCausalLM(cfg).to(device=device, dtype=dtype)
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    n_params = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    opt = build_optimizer(model, TrainConfig(optimizer="adamw_torch_fused", learning_rate=1e-5), device)

    need = args.warmup + args.steps
    rows = documents(need * args.mbs * 8, args.seq, cfg.vocab_size)
    lengths = np.array([len(r["input_ids"]) for r in rows])
    bins = pack_lengths(lengths, args.seq, seed=0)
    groups = batches_of_bins(bins, args.mbs)[:need]
    batches = [pack_batch([[rows[i] for i in b] for b in g], 0, pad_to=None if flash else args.seq, flatten=flash)
               for g in groups]

    name = torch.cuda.get_device_name() if cuda else "CPU (--tiny)"
    peak = args.peak_tflops or (gpu_peak(name) if cuda else None)
    print(f"device: {name} | torch {torch.__version__} | attention {cfg._attn_implementation} | "
          f"N={n_params / 1e9:.3f}B (input embedding excluded) | seq {args.seq} | {args.mbs} packed sequences "
          f"per micro-batch | packing efficiency {packing_efficiency(lengths, bins, args.seq):.2%} | "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    tokens, start = 0, None
    for i, batch in enumerate(batches):
        if i == args.warmup:
            sync()
            start, tokens = time.perf_counter(), 0
        batch = batch.to(device)
        with torch.autocast(device, dtype=dtype, enabled=cuda):
            loss, n = lm_loss_sum(model, batch)
        (loss / max(n, 1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += batch.n_tokens
    sync()
    secs = time.perf_counter() - start
    rate = tokens / secs
    line = f"{rate:,.0f} real tokens/s, {secs / args.steps:.3f} s/step"
    if peak:
        line += f", MFU {6 * n_params * rate / (peak * 1e12):.1%} (6·N against {peak:.0f} TFLOP/s bf16 dense)"
    elif cuda:
        line += " (pass --peak-tflops for MFU)"
    if cuda:
        line += f", peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    print(line)


if __name__ == "__main__":
    main()
