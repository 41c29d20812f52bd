"""How many axolotl example configs `newtune check` accepts, with the model keys removed, and why the rest are refused.

    python bench/axolotl_examples.py DIR [--show N] [--list]

DIR is searched for *.yml / *.yaml; every whole training config in it (a mapping with `datasets`,
`pretraining_dataset` or `rl`) is checked the way `newtune check` checks a file, after removing the keys
that choose the model (so the embedded model would be used). axolotl's examples are not in its wheel:
its PyPI sdist has them (`pip download axolotl==0.19.0 --no-deps --no-binary :all:`, examples/).
Prints accepted / refused / crashed, and the top refusal reasons as `key` (counted once per config).
"""

from __future__ import annotations

import argparse
import collections
import logging
import re
import sys
import traceback
from pathlib import Path

import yaml

MODEL_KEYS = ("base_model", "base_model_config", "tokenizer_config", "model_type", "tokenizer_type",
              "revision_of_model", "model_revision")


def training_configs(root: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and ({"datasets", "pretraining_dataset", "rl"} & data.keys()):
            found.append((path, data))
    return found


def reason(problem: str) -> str:
    """The key a problem is about, with the value for the few keys whose value is the reason."""
    key = problem.split(":", 1)[0]
    key = re.sub(r"\[\d+\]", "[]", key)
    for k in ("chat_template", "optimizer", "attn_implementation", "type", "rl", "adapter", "lr_scheduler"):
        if key.endswith(k):
            m = re.search(r"\(got '?([^')]+)'?\)", problem) or re.search(r"'([^']+)'", problem)
            if m:
                return f"{key}: {m.group(1)}"
    return key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--show", type=int, default=25, help="refusal reasons to print")
    ap.add_argument("--list", action="store_true", help="print each config's verdict")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # migration warnings are not refusals

    from newtune.config.load import load_config
    from newtune.errors import ConfigError

    configs = training_configs(args.dir)
    accepted, refused, crashed = [], {}, {}
    for path, data in configs:
        raw = {k: v for k, v in data.items() if k not in MODEL_KEYS}
        try:
            load_config(None, raw=raw)
            accepted.append(path)
        except ConfigError as e:
            refused[path] = e.problems
        except Exception:  # a crash is newtune's bug, counted apart
            crashed[path] = traceback.format_exc().splitlines()[-1]
    reasons: collections.Counter[str] = collections.Counter()
    for problems in refused.values():
        reasons.update({reason(p) for p in problems})
    n = len(configs)
    print(f"{n} training configs in {args.dir}")
    print(f"accepted {len(accepted)} ({100 * len(accepted) / max(n, 1):.0f}%), refused {len(refused)}, crashed {len(crashed)}")
    print("top refusal reasons (configs refused for each; a config can have several):")
    for why, count in reasons.most_common(args.show):
        print(f"  {count:4d}  {why}")
    for path, line in crashed.items():
        print(f"CRASH {path}: {line}", file=sys.stderr)
    if args.list:
        for path, _ in configs:
            verdict = "ok" if path in accepted else "CRASH" if path in crashed else "; ".join(refused[path])
            print(f"{path.relative_to(args.dir)}: {verdict}")


if __name__ == "__main__":
    main()
