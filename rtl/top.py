"""The DyPipe accelerator: only wiring of the units.

Control and status are plain ports and the memory is outside, behind one memory port
(:func:`~dypipe.rtl.mem_port.DramPort`): see :class:`Top`. Nothing in it is for simulation
only. ``backend`` picks the SRAM banks, the MAC array and the lane arithmetic: their Amaranth
descriptions (``"amaranth"``: the Verilog for synthesis, and Amaranth's simulator), plain
Verilog twins that Verilator simulates faster (``"verilog"``, used by the simulation harness,
:mod:`dypipe.tb.harness`), or the Amaranth descriptions with the ECP5's multiplier blocks
(``"ecp5"``, for ``dypipe synth``): :mod:`dypipe.rtl.backends`."""

from amaranth import Module, Signal, Value, Mux, Cat, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Err, Unit, MODULE_UNITS
from .backends import check_backend
from .context_buffer import ContextBuffer
from .control_unit import ControlUnit
from .dispatcher import Dispatcher
from .dma import LoadDMA, StoreDMA
from .global_buffer import GlobalBuffer
from .mem_port import MemArbiter, DramPort
from .perf import COUNTERS, COUNTER_BITS, COUNTER_LAG
from .pfu import PFU
from .sequencer import ModuleSequencer
from .task import PC_BITS, TaskRegister

__all__ = ["Top", "MEM_CLIENTS", "mem_tag_bits"]

#: Memory port clients, in arbiter (tag) order.
MEM_CLIENTS = ("ctrl", "load", "store")


def mem_tag_bits():
    """Width of the memory port's tags."""
    return max(1, (len(MEM_CLIENTS) - 1).bit_length())


class Top(wiring.Component):
    """Members
    -------
    start : In(1)            pulse (or hold) to boot and run
    prog_len : In(PC_BITS+1) instruction words at DRAM beat 0
    done : Out(1)            HALT retired, every task finished, every write in the memory
    error : Out(1)           stopped on an error; the ``err_*`` ports say which and where
    err_code : Out(Err), err_unit : Out(Unit), err_pc : Out(PC_BITS), err_addr : Out(32)
    perf_<name> : Out(COUNTER_BITS)   one port per :data:`dypipe.rtl.perf.COUNTERS` entry
    dram : Out(DramPort)     the memory port (tags: :data:`MEM_CLIENTS` order)
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config, self._backend = config, check_backend(backend)
        self._tag_bits = mem_tag_bits()
        members = {
            "start": In(1), "prog_len": In(PC_BITS + 1),
            "done": Out(1), "error": Out(1), "err_code": Out(Err), "err_unit": Out(Unit),
            "err_pc": Out(PC_BITS), "err_addr": Out(WORD_BITS),
            **{f"perf_{name}": Out(COUNTER_BITS) for name in COUNTERS},
            "dram": Out(DramPort(config, self._tag_bits)),
        }
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config

        m.submodules.ctrl = ctrl = ControlUnit(cfg)
        m.submodules.dispatcher = disp = Dispatcher(cfg, prepared=True)
        m.submodules.gbuf = gbuf = GlobalBuffer(cfg, backend=self._backend)
        m.submodules.load = load = LoadDMA(cfg)
        m.submodules.pfu = pfu = PFU(cfg, backend=self._backend)
        m.submodules.store = store = StoreDMA(cfg)
        m.submodules.arbiter = arb = MemArbiter(cfg, len(MEM_CLIENTS))
        units = {Unit.IO: load, Unit.PFU: pfu, Unit.STORE: store}
        seqs = {}
        for unit in MODULE_UNITS:
            seqs[unit] = m.submodules[f"seq_{unit.name.lower()}"] = ModuleSequencer(cfg, unit)

        # A fetch never meets a write of the same word unless the program runs code that a
        # copy is overwriting, which it must not (docs/architecture.md, "Control unit"): so
        # no read-before-write logic on the fetch path.
        m.submodules.imem = imem = Memory(shape=unsigned(WORD_BITS), depth=cfg.imem_words,
                                          init=[], attrs={"no_rw_check": 1})
        m.submodules.cb = cb = ContextBuffer(cfg, len(MODULE_UNITS))

        def connect_write(port, mem, when=1):
            p = mem.write_port()
            m.d.comb += [p.addr.eq(port.addr), p.data.eq(port.data), p.en.eq(port.en & when)]

        def connect_read(port, mem):
            p = mem.read_port()
            m.d.comb += [p.addr.eq(port.addr), p.en.eq(port.en), port.data.eq(p.data)]

        connect_write(ctrl.imem_w, imem)
        connect_read(ctrl.imem_r, imem)
        # The module functions' copy: every write below func_words lands in both.
        m.submodules.fmem = fmem = Memory(shape=unsigned(WORD_BITS), depth=cfg.func_words,
                                          init=[], attrs={"no_rw_check": 1})
        connect_write(ctrl.imem_w, fmem, when=ctrl.imem_w.addr < cfg.func_words)
        wiring.connect(m, ctrl.cb_w, cb.w)
        for idx, (unit, seq) in enumerate(seqs.items()):
            connect_read(seq.imem, fmem)
            wiring.connect(m, seq.cb, cb.r[idx])
            wiring.connect(m, seq.unit, units[unit].cmd)

        # Tasks: control unit -> register -> dispatcher -> sequencers; slots back to the control
        # unit. A record in the register counts as unfinished.
        m.submodules.task_reg = task_reg = TaskRegister(cfg)
        wiring.connect(m, ctrl.task, task_reg.i)
        wiring.connect(m, task_reg.o, disp.task)
        m.d.comb += task_reg.i_pc.eq(ctrl.task_pc)
        for idx, unit in enumerate(MODULE_UNITS):
            wiring.connect(m, disp.issue[idx], seqs[unit].task)
            wiring.connect(m, disp.retire[idx], ctrl.retire[idx])
            m.d.comb += [disp.finished[idx].eq(seqs[unit].done),
                         disp.released[idx].eq(seqs[unit].released),
                         seqs[unit].go.eq(disp.go[idx])]
        m.d.comb += [ctrl.tasks_idle.eq(disp.idle & (task_reg.held == 0)),
                     ctrl.tasks_live.eq(disp.live + task_reg.held)]

        # Data paths.
        wiring.connect(m, load.buf, gbuf.dma_w)
        wiring.connect(m, store.buf, gbuf.dma_r)
        wiring.connect(m, pfu.nbin_r, gbuf.nbin_r)
        wiring.connect(m, pfu.sb_r, gbuf.sb_r)
        wiring.connect(m, pfu.nbout_r, gbuf.nbout_r)
        wiring.connect(m, pfu.nbout_w, gbuf.nbout_w)
        wiring.connect(m, pfu.nbin_w, gbuf.nbin_w)
        for idx, client in enumerate((ctrl.mem, load.mem, store.mem)):
            wiring.connect(m, client, arb.clients[idx])

        # Start, done, errors: the first error stops the machine (``stopped``, from the next
        # cycle on). Each unit's report is registered as it comes, and the ports give the
        # first a cycle later, with the counters complete: the units' report logic and the
        # choice among them do not share a cycle.
        m.d.comb += [ctrl.start.eq(self.start), ctrl.prog_len.eq(self.prog_len)]
        # A malformed record is found in the cycle it reaches the dispatcher: blame its SAVEPC
        # or SPAWN.
        reporters = [(Unit.CTRL, ctrl.err, ctrl.err.pc), (Unit.CTRL, disp.err, task_reg.o_pc)]
        reporters += [(unit, seqs[unit].err, seqs[unit].err.pc) for unit in MODULE_UNITS]
        stopped = Signal()
        report = data.StructLayout({"valid": 1, "code": Err, "pc": PC_BITS, "addr": WORD_BITS})
        caught = [Signal(report, name=f"caught{k}") for k in range(len(reporters))]
        with m.If(~stopped):
            m.d.sync += stopped.eq(Cat(rep.valid for _, rep, _ in reporters).any())
            for got, (_, rep, pc) in zip(caught, reporters):
                m.d.sync += [got.valid.eq(rep.valid), got.code.eq(rep.code), got.pc.eq(pc),
                             got.addr.eq(rep.addr)]
        with m.If(~self.error):
            for got, (unit, _, _) in reversed(list(zip(caught, reporters))):
                with m.If(got.valid):                   # the first one listed wins a tie
                    m.d.sync += [self.error.eq(1), self.err_code.eq(got.code),
                                 self.err_unit.eq(unit), self.err_pc.eq(got.pc),
                                 self.err_addr.eq(got.addr)]
        m.d.comb += arb.stop.eq(stopped)
        # The last stores' beats may still wait in the arbiter's output register.
        m.d.sync += self.done.eq(ctrl.halted & ~stopped & arb.idle)

        # Performance counters.
        beat_bytes = cfg.dram_bytes_per_cycle
        increments = {
            "cycles": ctrl.running,
            "busy_io": seqs[Unit.IO].busy,
            "busy_pfu": seqs[Unit.PFU].busy,
            "busy_store": seqs[Unit.STORE].busy,
            "ctrl_active": ctrl.running & ~ctrl.stall,
            "ctrl_stall": ctrl.running & ctrl.stall,
            "ctx_load": sum(seq.ctx_load for seq in seqs.values()),
            "stall_hazard": disp.stall_hazard,
            "stall_busy": disp.stall_busy,
            "dram_read_bytes": arb.read_beat * beat_bytes,
            "dram_write_bytes": arb.write_beat * beat_bytes,
            "dram_refused": arb.refused,
            "macs": pfu.mac_cycles * cfg.macs_per_cycle,
            "tasks": task_reg.o.valid & task_reg.o.ready,
            "datapath_idle": ~(load.busy | store.busy | pfu.busy),
        }
        increments["boot_cycles"] = ctrl.booting
        assert increments.keys() == COUNTERS.keys()
        # Each increment is registered and added a cycle later (COUNTER_LAG), so that no
        # unit's logic runs into a counter's carry chain; ``done`` and ``error`` come late
        # enough to see it.
        for name, inc in increments.items():
            inc = Value.cast(inc)
            late = Signal(inc.shape(), name=f"perf_{name}_inc")
            counter = getattr(self, f"perf_{name}")
            counts = ctrl.booting if name == "boot_cycles" else ctrl.running & ~stopped
            m.d.sync += [late.eq(Mux(counts, inc, 0)), counter.eq(counter + late)]
        assert COUNTER_LAG == 1                         # the one register, ``late``

        wiring.connect(m, arb.dram, wiring.flipped(self.dram))
        return m
