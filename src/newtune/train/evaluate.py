"""Eval loss and perplexity: during training, and `newtune evaluate CONFIG` on the trained output_dir."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.run import RunConfig
from newtune.data.rows import Rows
from newtune.data.types import Tokenizer
from newtune.errors import NewtuneError

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy over every trained token of the eval set
    perplexity: float
    tokens: int  # trained tokens evaluated
    rows: int


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def evaluate_loss(model: Any, rows: Rows, cfg: RunConfig, *, pad_id: int, accelerator: Any = None) -> EvalResult:
    """Token-mean loss over the whole eval set, summed across ranks before dividing."""
    import torch

    from newtune.model.patches import uses_flat_batches
    from newtune.train.batches import eval_batches
    from newtune.train.loss import lm_loss_sum

    t, seq_len = cfg.train, cfg.data.sequence_len
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = accelerator.device if accelerator else next(model.parameters()).device
    packed = t.sample_packing if t.eval_sample_packing is None else t.eval_sample_packing
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # [loss sum, trained tokens]
    with torch.no_grad():
        for batch, counts in eval_batches(rows, batch_size=t.eval_batch_size or t.micro_batch_size, packed=packed,
                                          capacity=seq_len, pad_id=pad_id, rank=rank, world=world,
                                          pad_to=seq_len if t.pad_to_sequence_len else None,
                                          flatten=uses_flat_batches(model)):
            loss_sum, n = lm_loss_sum(model, batch.to(device))
            if counts:
                total[0] += loss_sum.double()
                total[1] += n
    if world > 1:
        total = accelerator.reduce(total, "sum")
    model.train(was_training)
    loss_sum, n = total.tolist()  # one host sync per evaluation
    loss = loss_sum / n if n else float("nan")
    return EvalResult(loss=loss, perplexity=perplexity(loss), tokens=int(n), rows=len(rows))


def load_trained(cfg: RunConfig, tokenizer: Tokenizer, dtype: Any) -> Any:
    """The model saved in output_dir: base model plus the adapter, or the fully fine-tuned weights."""
    from newtune.model.load import load_model

    out = Path(cfg.train.output_dir)
    if (out / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_model(cfg.model, tokenizer, dtype=dtype), out)
    if (out / "config.json").exists():
        return load_model(cfg.model.model_copy(update={"base_model": str(out)}), tokenizer, dtype=dtype)
    raise NewtuneError("output_dir", f"{out} holds no trained model", "run `newtune train` with this config first")


def run_evaluate(cfg: RunConfig, console: Console, out: Console | None = None) -> EvalResult:
    """Evaluate the trained model in output_dir on the eval set (val_set_size split or test_datasets).

    The result line goes to `out` (the CLI's stdout; default `console`)."""
    import torch

    from newtune.data.pipeline import prepare
    from newtune.data.tokenizer import tokenizer_for
    from newtune.model.patches import enable_fast_paths
    from newtune.train.precision import resolve_precision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    prec = resolve_precision(cfg.train, adapter=cfg.adapter.adapter, device_type=device)
    tokenizer = tokenizer_for(cfg.model)
    data = prepare(cfg.data, tokenizer, seed=cfg.train.seed, console=console,
                   tasks=cfg.adapter.adapter == "multitask_prompt_tuning")
    if data.eval is None or len(data.eval) == 0:
        raise NewtuneError("val_set_size", "this config has no eval set", "set val_set_size or test_datasets")
    model = load_trained(cfg, tokenizer, prec.torch_dtype()).to(device)
    enable_fast_paths(model, device, cfg.adapter)
    with torch.autocast(device, dtype=prec.torch_dtype(), enabled=prec.mixed_precision != "no"):
        result = evaluate_loss(model, data.eval, cfg, pad_id=tokenizer.pad_token_id)
    path = Path(cfg.train.output_dir) / "eval.json"
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    (console if out is None else out).print(f"eval loss {result.loss:.4f}, perplexity {result.perplexity:.2f} "
                                            f"({result.rows} rows, {result.tokens} trained tokens) → {path}",
                                            highlight=False, soft_wrap=True)
    return result
