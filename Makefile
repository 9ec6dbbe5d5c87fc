# Every target wraps a command a user could type; `dypipe --help` is the real interface.
# `make test` and `make demo` create or reuse .venv and install the project into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DYPIPE := $(VENV)/bin/dypipe
STAMP  := $(VENV)/.dypipe-installed
CONFIG ?= small
JOBS   ?= 2

.PHONY: venv test demo verilog lint sim bench-ops clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# The whole suite: block tests in Amaranth's simulator, system tests through Verilator.
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --durations=10

# The main job: FC with bias and ReLU on the RTL in all three modes, checked bit for bit.
demo: $(STAMP)
	$(DYPIPE) run fc --config $(CONFIG) --mode all

verilog: $(STAMP)
	$(DYPIPE) verilog --config $(CONFIG) -o build/dypipe_$(CONFIG).v --lint

# The cocotb regression on the RTL (the Verilator half of `make test`).
sim: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m verilator

clean:
	rm -rf sim_build build results .pytest_cache
