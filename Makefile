# robustbench-aux -- every target sets up what it needs (a fresh clone needs no hand steps).
#   make demo                 the whole pipeline at toy scale on the CPU (report in reports/demo/)
#   make test                 the default test suite (slow tests excluded)
#   make reproduce-cifar100   the full CIFAR-100 / CIFAR-100-C reproduction (a GPU machine)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch pins: x86-64 takes the CUDA build (it also runs on the CPU); aarch64 takes a CPU build.
ifeq ($(shell uname -m),aarch64)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
endif
STAMP  := $(VENV)/.installed

# demo / reproduction knobs (see README)
DATASET ?= cifar100
DATA    ?= data
EXTRA   ?=

.PHONY: install test test-all lint browser demo reproduce-cifar100 check clean-venv

install: $(STAMP)

# Re-runs only when pyproject.toml (or the pins) change; otherwise does nothing.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PINS)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

test: install
	$(BIN)/python -m pytest

# everything, slow tests included
test-all: install
	$(BIN)/python -m pytest -m "not gpu"

lint: install
	$(BIN)/ruff check robustbench_aux tests benchmarks

# headless Chromium for the report's browser test (Debian/Ubuntu, as root)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: install
	@echo "not implemented yet: see issue 6 (one-command reproduction and demo)"; exit 2

reproduce-cifar100: install
	@echo "not implemented yet: see issue 6 (one-command reproduction and demo)"; exit 2

clean-venv:
	rm -rf $(VENV)
