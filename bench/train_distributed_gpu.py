"""Several GPUs: DDP and FSDP2 (ZeRO-3-like and ZeRO-2-like) on a random ~1.1B Llama-shape model, through
`newtune train --nproc N`, the path users take. Prints tokens/s, MFU and peak memory per GPU; asserts nothing.

    .venv/bin/python bench/train_distributed_gpu.py [--nproc 8] [--steps 20] [--seq 2048] [--mbs 4]
                                                    [--strategies ddp,fsdp2_zero3,fsdp2_zero2] [--tiny]

DeepSpeed ZeRO-3 is not in the list: newtune refuses `deepspeed:` until it is wired into the loop
(README, "Several processes and nodes"). `--tiny` runs a 2-layer model on 2 CPU processes to check the script.
MFU: 6·N FLOPs per token (N without the input embedding) over the GPUs' dense bf16 peak (bench/train_gpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

STRATEGIES = {
    "ddp": {},
    "fsdp2_zero3": {"fsdp_config": {"fsdp_version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                    "transformer_layer_cls_to_wrap": "LlamaDecoderLayer", "reshard_after_forward": True}},
    "fsdp2_zero2": {"fsdp_config": {"fsdp_version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                    "transformer_layer_cls_to_wrap": "LlamaDecoderLayer", "reshard_after_forward": False}},
}


def make_model(d: Path, tiny: bool) -> int:
    """A random Llama (1.1B: TinyLlama's shape) with the SmolLM2 tokenizer; returns N for MFU."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from newtune.embedded import gguf_path

    tok = AutoTokenizer.from_pretrained(gguf_path().parent, gguf_file=gguf_path().name)
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2) if tiny else dict(hidden_size=2048, intermediate_size=5632,
                                                          num_hidden_layers=22, num_attention_heads=32,
                                                          num_key_value_heads=4)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), max_position_embeddings=4096, **shape))
    model.config.bos_token_id, model.config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    model.to(torch.float32 if tiny else torch.bfloat16).save_pretrained(d)
    tok.save_pretrained(d)
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--mbs", type=int, default=4)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    import torch

    nproc = args.nproc or (2 if args.tiny else torch.cuda.device_count())
    seq = 128 if args.tiny else args.seq
    work = Path(tempfile.mkdtemp(prefix="newtune-dist-bench-"))
    n_params = make_model(work / "model", args.tiny)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    rows = work / "rows.jsonl"
    with open(rows, "w") as f:
        for i in range(args.steps * args.mbs * nproc * 8):
            text = " ".join(words[(i + j) % len(words)] for j in range(seq // 2))
            f.write(json.dumps({"text": text}) + "\n")
    peak = args.peak_tflops
    if peak is None and torch.cuda.is_available():
        sys.path.insert(0, str(Path(__file__).parent))
        from train_gpu import gpu_peak

        peak = gpu_peak(torch.cuda.get_device_name(0))
    print(f"{nproc} processes, N = {n_params / 1e9:.2f}B, seq {seq}, micro-batch {args.mbs}")
    print(f"{'strategy':<14} {'tokens/s':>10} {'MFU':>7} {'peak GB/GPU':>12}")
    for name in args.strategies.split(","):
        out = work / name
        cfg = {"base_model": str(work / "model"), "datasets": [{"path": str(rows), "type": "completion"}],
               "dataset_prepared_path": str(work / "prepared"), "sequence_len": seq, "sample_packing": True,
               "micro_batch_size": args.mbs, "max_steps": args.steps, "learning_rate": 1e-5,
               "optimizer": "adamw_torch_fused", "bf16": "auto", "gradient_checkpointing": not args.tiny,
               "save_strategy": "no", "output_dir": str(out), **STRATEGIES[name]}
        (work / f"{name}.yml").write_text(yaml.safe_dump(cfg))
        res = subprocess.run([str(Path(sys.executable).parent / "newtune"), "train", str(work / f"{name}.yml"),
                              "--nproc", str(nproc)], capture_output=True, text=True, env=os.environ)
        if res.returncode != 0:
            print(f"{name:<14} failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            continue
        s = json.loads((out / "train_summary.json").read_text())
        mfu = 6 * n_params * s["tokens_per_s"] / (peak * 1e12 * nproc) if peak else None
        print(f"{name:<14} {s['tokens_per_s']:>10,.0f} {f'{mfu:.1%}' if mfu else 'n/a':>7} {s['peak_memory_gb']:>12.2f}")


if __name__ == "__main__":
    main()
