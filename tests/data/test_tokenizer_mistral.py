"""A Mistral model directory (config.json `model_type: mistral`) gives the same ids and labels whether
transformers hands it to MistralCommonBackend (mistral-common installed, and the directory taken for the
Mistral format: a tekken.json, or other versions' detection) or to its own tokenizer (no mistral-common).
Each case runs in a subprocess: transformers decides its tokenizer mapping when it is imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import _package_dir

SCRIPT = r"""
import json, sys
import transformers.utils.import_utils as iu
if sys.argv[2] == "without":  # transformers as it behaves where mistral-common is not installed
    iu.is_mistral_common_available = lambda *a, **k: False
import transformers.models.auto.tokenization_auto as ta
if sys.argv[2] == "mistral-common":  # transformers taking the directory for the Mistral format unless told not to
    ta._use_mistral_format = lambda path, mistral_format=None, **kw: mistral_format is not False
from transformers import AutoTokenizer
from newtune.data.rowcodec import encode_row
from newtune.data.tokenizer import load_tokenizer

raw = AutoTokenizer.from_pretrained(sys.argv[1])
tok = load_tokenizer(sys.argv[1])
rows = [("alpaca", {"instruction": "Say <s> and  two  spaces", "input": " leading", "output": "ok </s> [INST]"}),
        ("alpaca:chat", {"instruction": "a\n\nb  c", "output": "Bonjour"})]
encoded = [encode_row(kind, row, tok) for kind, row in rows]
print(json.dumps({"raw": type(raw).__name__, "raw_ids": raw("<s> a  b", add_special_tokens=False)["input_ids"],
                  "class": type(tok).__name__,
                  "rows": [[list(e["input_ids"]), list(e["labels"])] for e in encoded]}))
"""


@pytest.fixture(scope="module")
def mistral_model_dir(tmp_path_factory) -> Path:
    """The Mistral v1 SentencePiece tokenizer with the config.json of a Mistral model."""
    d = tmp_path_factory.mktemp("mistral_model")
    shutil.copy(_package_dir("mistral_common") / "data" / "tokenizer.model.v1", d / "tokenizer.model")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": True}))
    (d / "config.json").write_text(json.dumps({"model_type": "mistral", "architectures": ["MistralForCausalLM"],
                                               "vocab_size": 32000}))
    return d


def run(model_dir: Path, mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(model_dir), mode], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_mistral_dir_gives_the_same_ids_and_labels_with_and_without_mistral_common(mistral_model_dir):
    mc, without, plain = (run(mistral_model_dir, m) for m in ("mistral-common", "without", "as-installed"))
    # What transformers alone does: two tokenizers, two sets of ids for the same text.
    assert mc["raw"] == "MistralCommonBackend" and without["raw"] != "MistralCommonBackend"
    assert mc["raw_ids"] != without["raw_ids"]
    # What newtune does: transformers' tokenizer from the directory's own files, whatever is installed.
    assert mc["class"] == without["class"] == plain["class"] != "MistralCommonBackend"
    assert mc["rows"] == without["rows"] == plain["rows"]
    ids, labels = mc["rows"][0]
    assert ids[0] == 1 and ids[-1] == 2 and labels[-1] == 2 and -100 in labels  # BOS, trained EOS, masked prompt
