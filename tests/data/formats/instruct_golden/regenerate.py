"""Write axolotl_0.21.0.json: axolotl's input_ids/labels for every case in rows.py.

Needs the axolotl 0.21.0 reference venv (see bench/axolotl_dump.py). Run from the repo root:
    .venv/bin/python tests/data/formats/instruct_golden/regenerate.py [AXOLOTL_PYTHON] [TOKENIZERS_DIR]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from rows import CASES  # noqa: E402  (run as a script: rows.py sits beside it)

AXOLOTL_PYTHON = sys.argv[1] if len(sys.argv) > 1 else "/tmp/axolotl-venv/bin/python"
TOKENIZERS = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/axolotl-venv/tokenizers")


def run(tokenizer: str, train_on_inputs: bool, tmp: Path) -> list[dict]:
    datasets = []
    for name, keys, rows in CASES:
        path = tmp / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        datasets.append({"path": str(path), "ds_type": "json", **keys})
    cfg = {"base_model": str(TOKENIZERS / tokenizer), "train_on_inputs": train_on_inputs, "sequence_len": 2048,
           "val_set_size": 0, "shuffle_merged_datasets": False, "sample_packing": False, "dataset_num_proc": 1,
           "datasets": datasets}
    cfg_path = tmp / f"{tokenizer}-{train_on_inputs}.yml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp / f"{tokenizer}-{train_on_inputs}.jsonl"
    subprocess.run([AXOLOTL_PYTHON, "bench/axolotl_dump.py", str(cfg_path), str(out)], check=True)
    return [json.loads(line) for line in out.read_text().splitlines()]


def main() -> None:
    result: dict = {"axolotl": "0.21.0", "cases": {name: {} for name, _, _ in CASES}}
    with tempfile.TemporaryDirectory() as d:
        for tokenizer in ("smollm2", "mistral-v1"):
            dumps = {tio: run(tokenizer, tio, Path(d)) for tio in (False, True)}
            total = sum(len(rows) for _, _, rows in CASES)
            assert all(len(v) == total for v in dumps.values()), {k: len(v) for k, v in dumps.items()}
            k = 0
            for name, _, rows in CASES:
                entries = []
                for masked, trained in zip(dumps[False][k : k + len(rows)], dumps[True][k : k + len(rows)], strict=True):
                    assert masked["input_ids"] == trained["input_ids"]
                    entries.append({"input_ids": masked["input_ids"], "labels": masked["labels"],
                                    "labels_train_on_inputs": trained["labels"]})
                result["cases"][name][tokenizer] = entries
                k += len(rows)
    with (HERE / "axolotl_0.21.0.json").open("w") as f:
        f.write('{"axolotl": "0.21.0", "cases": {\n')
        lines = []
        for name, by_tok in result["cases"].items():
            inner = ",\n".join(f'  "{tok}": [\n' + ",\n".join("   " + json.dumps(e) for e in entries) + "\n  ]"
                               for tok, entries in by_tok.items())
            lines.append(f' "{name}": {{\n{inner}\n }}')
        f.write(",\n".join(lines) + "\n}}\n")


if __name__ == "__main__":
    main()
