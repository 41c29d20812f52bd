"""Run `axolotl train CONFIG` and count the real (non-padding) tokens it trains on. Run with axolotl's Python.

    /tmp/axolotl-venv/bin/python bench/axolotl_train.py CONFIG.yml PAD_ID

Used by bench/train.py --axolotl-venv. Wraps transformers' Trainer.training_step to count the input
tokens of each micro-batch that are not padding, then prints one line `REAL_TOKENS n` after axolotl's
own log, which holds train_runtime. The training itself is axolotl's, unchanged.
Padded batches carry an attention_mask (0 on padding). axolotl's packed SDPA batches carry none: each
bin is padded at its end with PAD_ID tokens whose labels are -100, so those trailing tokens are counted
out (a real row ends in a trained token or in text after it, not in an untrained PAD_ID).
"""

from __future__ import annotations

import os
import sys

import transformers

real_tokens = 0
PAD_ID = int(sys.argv[2]) if len(sys.argv) > 2 else -1
_step = transformers.Trainer.training_step


def counting_step(self, model, inputs, *args, **kwargs):
    global real_tokens
    if os.environ.get("AXOLOTL_TRAIN_DEBUG") and real_tokens == 0:
        for k, v in inputs.items():
            print("BATCH", k, tuple(v.shape), v[..., -6:].tolist() if hasattr(v, "shape") else v, flush=True)
    mask = inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        real_tokens += int((mask != 0).sum())
    else:
        padding = (inputs["input_ids"] == PAD_ID) & (inputs["labels"] == -100)
        trailing = padding.flip(-1).int().cumprod(-1).sum()  # the run of padding at the end of each row
        real_tokens += int(inputs["input_ids"].numel() - trailing)
    return _step(self, model, inputs, *args, **kwargs)


transformers.Trainer.training_step = counting_step

if __name__ == "__main__":
    from axolotl.cli.train import do_cli

    do_cli(config=sys.argv[1])
    print(f"REAL_TOKENS {real_tokens}", flush=True)
