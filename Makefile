# robustbench-aux -- every target sets up what it needs (a fresh clone needs no hand steps).
#   make demo                 the whole pipeline at toy scale on the CPU (report in reports/demo/)
#   make test                 the default test suite (slow tests excluded)
#   make slurm-test           sweeps through a real single-node Slurm cluster (root; installs Debian's Slurm)
#   make reproduce-cifar100   the full CIFAR-100 / CIFAR-100-C reproduction (a GPU machine)
#   make reproduce-cpu-cifar10 DATA=<dir>   full-data CIFAR-10 / CIFAR-10-C on a 2-core CPU (hours)

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

# demo / reproduction knobs (see README): empty = the grid's default
DATASET    ?= cifar100
DATA       ?= data
ARCHS      ?=
METHODS    ?=
SEEDS      ?=
EPOCHS     ?=
N_TRAIN    ?=
EVAL_N     ?=
GENERATE_N ?=
DEVICE     ?=
WORKERS    ?=
PER_GPU    ?=
GPUS       ?=
THREADS    ?=
EXTRA      ?=
knobs = --dataset $(DATASET) --data $(DATA) --workers $(or $(WORKERS),1) $(grid_knobs)
grid_knobs = $(if $(ARCHS),--archs $(ARCHS)) $(if $(METHODS),--methods $(METHODS)) $(if $(SEEDS),--seeds $(SEEDS)) \
	$(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(N_TRAIN),--n-train $(N_TRAIN)) $(if $(EVAL_N),--eval-n $(EVAL_N)) \
	$(if $(DEVICE),--device $(DEVICE)) $(if $(PER_GPU),--per-gpu $(PER_GPU)) $(if $(GPUS),--gpus $(GPUS)) \
	$(if $(THREADS),--threads $(THREADS)) $(EXTRA)

.PHONY: install test test-all lint browser slurm-packages slurm-test demo reproduce-cifar100 reproduce-cpu-cifar10 check clean-venv

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

# style, formatting and the layering rule (docs/design.md; contracts in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# headless Chromium for the report's browser test (Debian/Ubuntu, as root)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's Slurm daemons, client and munge for the slurm-marked tests (as root; nothing to do when present).
# DPkg::Lock::Timeout waits for another apt run to finish instead of failing.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq
slurm-packages:
	@for tool in slurmctld slurmd sbatch munged; do command -v $$tool >/dev/null 2>&1 || missing=1; done; \
	  if [ -n "$$missing" ]; then $(APT) update && $(APT) install -y --no-install-recommends $(SLURM_PACKAGES) >/dev/null; fi

# sweeps through a real single-node Slurm cluster that the tests start and stop (tests/slurm_cluster.py);
# where the daemons cannot start, the tests fail with the reason ("slurm cluster did not start: ...")
slurm-test: install slurm-packages
	$(BIN)/python -m pytest -m slurm tests/test_sweep_slurm.py

# toy-scale pipeline on the CPU (about 10 minutes): report in reports/demo/index.html
demo: install
	@$(BIN)/robustbench-aux reproduce --grid baselines/grids/demo.toml --out runs/demo --report reports/demo \
	  --generate-n $(or $(GENERATE_N),500) --dataset $(DATASET) --data $(DATA) --workers $(or $(WORKERS),2) $(grid_knobs) \
	  --hint "offline? run the demo on a local copy: make demo DATASET=cifar10 DATA=<dir holding cifar10/>"

# the full reproduction (a GPU machine): report in reports/$(DATASET)/index.html; downloads the
# published CIFAR-C when the network allows, generates it otherwise
reproduce-cifar100: install
	@$(BIN)/robustbench-aux reproduce --grid baselines/grids/cifar100.toml --out runs/$(DATASET) \
	  --report reports/$(DATASET) --download-c $(if $(GENERATE_N),--generate-n $(GENERATE_N)) $(knobs)

# the first full-data result on the CPU (baselines/grids/cpu_cifar10.toml; its comment holds the
# time budget): CIFAR-10, all 50,000 training images, plain + auxiliary resnet8, 2 seeds, evaluated on
# the clean test set and the full generated CIFAR-10-C; 2 runs at once, 1 thread each (WORKERS=2).
# Rerunning the same command skips finished runs and resumes interrupted ones.
reproduce-cpu-cifar10: install
	@$(BIN)/robustbench-aux reproduce --grid baselines/grids/cpu_cifar10.toml --report reports/cpu-cifar10 \
	  --dataset cifar10 --data $(DATA) --workers $(or $(WORKERS),2) $(if $(GENERATE_N),--generate-n $(GENERATE_N)) \
	  $(if $(STOP_AFTER),--stop-after $(STOP_AFTER)) \
	  $(grid_knobs)

# CI regression check on small fixed runs (baselines/ci/)
check: install
	$(BIN)/robustbench-aux check --data $(DATA)

clean-venv:
	rm -rf $(VENV)
