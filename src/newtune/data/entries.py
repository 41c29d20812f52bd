"""Checks of one dataset entry as a whole, beside the per-row checks of the formats (data/rowfields.py).

A roles_to_train entry that no message can have, an entry that gives no rows, a part in which no row trains
anything, and the `datasets[i] <path>` that leads an error when a config lists several entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from newtune.config.data import DatasetConfig
from newtune.data.options import options_of
from newtune.data.sources import iter_batches, local_files
from newtune.data.types import FormatContext
from newtune.errors import DataError

NOTHING_TRAINED_HINT = ("training would learn nothing: check the fields that hold the answers (an empty output trains "
                        "nothing), roles_to_train, train_on_inputs, message_field_training, or the labels of "
                        "pre-tokenized rows (-100 is not trained)")


def roles_in_first_rows(ds: DatasetConfig, fmt: Any, opts: Any, ctx: FormatContext) -> list[str]:
    """The roles of the messages in the dataset's first batch (rows the format refuses are skipped)."""
    seen: dict[str, None] = {}
    batch = next(iter(iter_batches(ds)), None)
    for row in batch.rows if batch is not None else []:
        try:
            seen.update(dict.fromkeys(m.role for m in fmt.fn(row, opts, ctx).messages))
        except Exception:  # noqa: S112  a row the format refuses: encoding names it
            continue
    return list(seen)


def check_roles_to_train(ds: DatasetConfig, name: str, ctx: FormatContext) -> None:
    """A roles_to_train entry that no message can have (after the role mapping) trains nothing: say so up front."""
    from newtune.config.load import did_you_mean
    from newtune.data.formats import sharegpt
    from newtune.data.options import format_of

    fmt = format_of(ds)
    opts = options_of(ds) if fmt.kind == "conversation" else None
    wanted = getattr(opts, "roles_to_train", None)
    if not wanted:
        return
    aliases = opts.role_aliases()
    possible = set(sharegpt.role_map(opts).values() if isinstance(opts, sharegpt.Options) else aliases.values())
    unknown = [r for r in wanted if aliases.get(r, r) not in possible]
    if unknown:
        seen = roles_in_first_rows(ds, fmt, opts, ctx)
        raise DataError(f"{name}.roles_to_train", f"no message can have role {unknown[0]!r}"
                        f"{did_you_mean(unknown[0], sorted(possible))} (this dataset's messages have roles "
                        f"{', '.join(sorted(possible))}; its first rows have: {', '.join(seen) or 'none'})",
                        "list roles by their names after the roles: mapping, e.g. roles_to_train: [assistant]")


def no_rows(ds: DatasetConfig) -> str:
    """Why a dataset entry gave no rows: an empty file, a file of blank lines, an empty shard."""
    if ds.shards:
        return f"shard {ds.shards_idx or 0} of {ds.shards} holds no rows"
    files = local_files(ds) or []
    if len(files) == 1 and files[0].stat().st_size == 0:
        return "the file is empty (0 bytes)"
    return "holds no rows" + (f" ({len(files)} files)" if len(files) > 1 else "")


def located(e: DataError, name: str, ds: DatasetConfig) -> DataError:
    """`e` led by the dataset entry and the file's path as the config gives it, for configs with several entries
    (their files may share a name): `datasets[1] b/train.jsonl line 3`."""
    where = e.where
    root = Path(ds.path).expanduser()
    for f in local_files(ds) or []:
        shown = str(root) if f == root else str(root / f.relative_to(root))
        if where == f.name or where.startswith(f.name + " "):
            where = shown + where[len(f.name):]
            break
    if where.startswith(name):
        return e
    return DataError(f"{name} {where}" if where else f"{name} {ds.path}", e.problem, e.hint)
