"""`unfrozen_parameters`: train only the parameters whose names match, as axolotl's freeze_layers_except.

Each pattern is a regex matched at the start of the parameter name, with '.' literal unless followed by
'+' (axolotl's rule), optionally ending in a row range `[start:end]`: then only those rows of the
parameter learn (the other rows' gradients are zeroed by a hook), e.g. `^model.embed_tokens.weight$[32000:]`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from newtune.errors import ModelError

log = logging.getLogger("newtune.model")
RANGE = re.compile(r"^(.+)\[([0-9]*)(?::([0-9]*))?\]$")


def parse(pattern: str) -> tuple[re.Pattern, tuple[int, int | None] | None]:
    m = RANGE.match(pattern)
    rows: tuple[int, int | None] | None = None
    if m:
        pattern = m.group(1)  # ':' present or not: group(3) is None only without it
        start = int(m.group(2)) if m.group(2) else 0
        end = int(m.group(3)) if m.group(3) else None
        rows = (start, start + 1) if m.group(3) is None and m.group(2) else (start, end)
    return re.compile(re.sub(r"\.(?!\+)", r"\\.", pattern)), rows


def merged(ranges: list[tuple[int, int | None]], size: int, name: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted((s, size if e is None else e) for s, e in ranges):
        if start < 0 or end > size or start >= end:
            raise ModelError("unfrozen_parameters", f"row range [{start}:{end}] does not fit {name} ({size} rows)")
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def freeze_except(model: Any, patterns: list[str]) -> list[str]:
    """Leave requires_grad only on matching parameters (row ranges: on those rows); the trained names."""
    compiled = [parse(p) for p in patterns]
    trained = []
    for name, param in model.named_parameters():
        hits = [rows for regex, rows in compiled if regex.match(name)]
        param.requires_grad_(bool(hits))
        if not hits:
            continue
        trained.append(name)
        if any(rows is None for rows in hits):
            continue  # some pattern trains the whole parameter
        keep = merged([r for r in hits if r is not None], param.shape[0], name)
        param.register_hook(_zero_rows_outside(keep))
    if not trained:
        raise ModelError("unfrozen_parameters", "no parameter name matches these patterns",
                         f"names look like {next(iter(n for n, _ in model.named_parameters()), '?')}")
    log.info("unfrozen_parameters: training %d of %d parameters", len(trained), len(list(model.parameters())))
    return trained


def _zero_rows_outside(keep: list[tuple[int, int]]) -> Any:
    def hook(grad: Any) -> Any:
        mask = grad.new_zeros(grad.shape[0], dtype=grad.dtype)
        for start, end in keep:
            mask[start:end] = 1
        return grad * mask.view(-1, *([1] * (grad.dim() - 1)))

    return hook
