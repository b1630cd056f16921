# Two entry points for a fresh machine:
#   make run   set up and run the default study (config.yaml) on the embedded CP2K engine
#   make test  set up and run the test suite
# Both create .venv, install the package with pinned dependencies, and install Debian's
# cp2k + cp2k-data when no CP2K binary is on PATH (make test also Debian's gpaw + gpaw-data).

PYTHON ?= python3
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# OpenMPI refuses to start as root unless told to; containers and fresh cloud machines often
# run as root. Ignored for other users.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: run test test-long test-quick test-slurm setup setup-test cp2k gpaw lint clean

run: setup cp2k
	$(BIN)/snakemake --cores $(CORES) --configfile config.yaml

test: setup-test cp2k gpaw
	$(BIN)/pytest -m "not long" $(PYTEST_ARGS)

# Real-engine checks too long for the CI budget (the computed dielectric tensor of NaCl).
test-long: setup-test cp2k
	$(BIN)/pytest -m long $(PYTEST_ARGS)

# The quick subset while working: no real-engine runs.
test-quick: setup-test
	$(BIN)/pytest -m "not slow and not slurm" $(PYTEST_ARGS)

# The tiny study through a real single-node SLURM (root, Debian/Ubuntu: installs slurm).
test-slurm: setup-test cp2k
	$(BIN)/pytest -m slurm $(PYTEST_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .

setup-test: setup
	$(BIN)/pip install --quiet -r requirements-test.txt

cp2k:
	@bash scripts/ensure_engine.sh cp2k

# Debian's GPAW for the spin-orbit band-edge shifts (band_edges.soc: gpaw) and its test.
gpaw:
	@bash scripts/ensure_engine.sh gpaw

lint: setup-test
	$(BIN)/ruff check workflow tests bench scripts
	$(BIN)/ruff format --check workflow tests bench scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/mypy
	$(BIN)/python scripts/sync_dependencies.py --check

clean:
	rm -rf results logs .snakemake
