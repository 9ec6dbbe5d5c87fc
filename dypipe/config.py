"""The one configuration object every part of DyPipe derives its sizes from.

The RTL (``dypipe.rtl``), the software stack (``dypipe.sw``) and the testbenches
(``dypipe.tb``) all read a :class:`Config`; no width, depth or address is written
anywhere else. A configuration's :attr:`Config.key` names its build directory, so
two configurations never share a Verilator build.
"""

import dataclasses
import hashlib
import json

__all__ = ["Config", "PRESETS", "get_config", "with_overrides", "ELEM_BITS", "ELEM_BYTES",
           "WORD_BITS"]

#: Activations and weights are 16-bit two's complement fixed point (DianNao's choice).
ELEM_BITS = 16
ELEM_BYTES = ELEM_BITS // 8
#: Scalar registers, instructions and context-buffer words are 32 bits wide.
WORD_BITS = 32
#: Words in a row of the context buffer (and of the templates' contexts): the most the
#: control unit writes in a cycle. ``ctx_slot_words`` is a multiple of it.
CB_LANES = 4


def _log2(value, what):
    if value <= 0 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, not {value!r}")
    return value.bit_length() - 1


@dataclasses.dataclass(frozen=True)
class Config:
    """Hardware parameters of one DyPipe instance.

    Parameters
    ----------
    name : str
        Preset name; part of :attr:`key`.
    pe_rows, pe_cols : int
        The PFU's multiply-accumulate array: ``pe_rows`` output neurons, each summing
        ``pe_cols`` products per cycle (paper Table 1: 32 x 64).
    frac_bits : int
        Fraction bits of the 16-bit fixed-point format.
    acc_bits : int
        Accumulator width in the PFU.
    dram_bytes_per_cycle : int
        Width of the memory port: one beat of this many bytes per cycle, shared by
        loads and stores (paper: 32 B/cycle = 32 GB/s at 1 GHz).
    dram_latency : int
        Cycles from a read request to its data, modelled on the testbench side.
    dram_bytes : int
        Size of the DRAM model.
    nbin_bytes, sb_bytes, nbout_bytes : int
        The global buffer: input neurons, synapses (weights), output neurons.
    cb_bytes : int
        Context buffer (paper: 16 KB): the task ring's context slots.
    ctx_slot_words : int
        32-bit words in one task's context slot.
    imem_words : int
        Instruction memory, in 32-bit instructions.
    func_words : int
        The first ``func_words`` instructions, where the module functions must lie: the module
        sequencers fetch only from there, each from its own copy of them.
    task_ring : int
        Task records the dispatcher holds (committed, not yet finished); SavePC stalls when all
        are taken.
    templates : int
        Task templates the control unit holds (a record and ``ctx_slot_words`` context words
        each), which SPAWN instantiates.
    """

    name: str
    pe_rows: int
    pe_cols: int
    frac_bits: int
    acc_bits: int
    dram_bytes_per_cycle: int
    dram_latency: int
    dram_bytes: int
    nbin_bytes: int
    sb_bytes: int
    nbout_bytes: int
    cb_bytes: int
    ctx_slot_words: int
    imem_words: int
    func_words: int
    task_ring: int
    templates: int

    def __post_init__(self):
        _log2(self.pe_rows, "pe_rows")
        _log2(self.pe_cols, "pe_cols")
        _log2(self.dram_bytes_per_cycle, "dram_bytes_per_cycle")
        _log2(self.ctx_slot_words, "ctx_slot_words")
        if self.ctx_slot_words < CB_LANES:
            raise ValueError(f"ctx_slot_words must be at least {CB_LANES} (a row of the "
                             f"context buffer), not {self.ctx_slot_words!r}")
        _log2(self.imem_words, "imem_words")
        _log2(self.func_words, "func_words")
        if not 2 <= self.func_words <= self.imem_words:
            raise ValueError(f"func_words must be in 2..imem_words ({self.imem_words}), not "
                             f"{self.func_words!r}")
        if not 2 <= self.task_ring <= 64:
            raise ValueError(f"task_ring must be in 2..64, not {self.task_ring!r}")
        if self.beat_elems < 2:
            raise ValueError(f"dram_bytes_per_cycle must be at least 4, not "
                             f"{self.dram_bytes_per_cycle!r}")
        for what, row in (("pe_cols", self.pe_cols), ("pe_rows", self.pe_rows)):
            if row % self.beat_elems:
                raise ValueError(
                    f"{what} ({row}) must be a multiple of the elements in one DRAM beat "
                    f"({self.beat_elems}), so that buffer rows are whole beats")
        if not 1 <= self.frac_bits <= 14:
            raise ValueError(f"frac_bits must be in 1..14, not {self.frac_bits!r}")
        if self.acc_bits < 2 * ELEM_BITS + self.pe_cols.bit_length():
            raise ValueError(f"acc_bits ({self.acc_bits}) too narrow for a {self.pe_cols}-wide "
                             f"adder tree of {2 * ELEM_BITS}-bit products")
        if self.dram_latency < 1:
            raise ValueError(f"dram_latency must be at least 1, not {self.dram_latency!r}")
        for what, size, row in (("nbin_bytes", self.nbin_bytes, self.nbin_row_bytes),
                                ("sb_bytes", self.sb_bytes, self.sb_row_bytes),
                                ("nbout_bytes", self.nbout_bytes, self.nbout_row_bytes),
                                ("dram_bytes", self.dram_bytes, self.dram_bytes_per_cycle)):
            if size <= 0 or size % row:
                raise ValueError(f"{what} ({size}) must be a positive multiple of its row "
                                 f"({row} bytes)")
        if self.cb_bytes % (4 * self.ctx_slot_words):
            raise ValueError(f"cb_bytes ({self.cb_bytes}) must hold a whole number of "
                             f"{self.ctx_slot_words}-word context slots")
        _log2(self.cb_slots, "cb_bytes / slot size (the number of context slots)")
        if not 1 <= self.templates <= 64:
            raise ValueError(f"templates must be in 1..64, not {self.templates!r}")
        if self.ctx_slot_words > 2048:
            raise ValueError(f"ctx_slot_words must be at most 2048 (TPLCTX's offset field), "
                             f"not {self.ctx_slot_words}")

    # -- the PFU -------------------------------------------------------------------------

    @property
    def macs_per_cycle(self):
        return self.pe_rows * self.pe_cols

    # -- the memory port -----------------------------------------------------------------

    @property
    def beat_elems(self):
        """16-bit elements in one DRAM beat."""
        return self.dram_bytes_per_cycle // ELEM_BYTES

    @property
    def beat_bits(self):
        return self.dram_bytes_per_cycle * 8

    @property
    def beat_words(self):
        """32-bit words in one DRAM beat (the control unit's loads and stores)."""
        return self.dram_bytes_per_cycle // 4

    @property
    def dram_beats(self):
        return self.dram_bytes // self.dram_bytes_per_cycle

    @property
    def dram_addr_bits(self):
        """Width of a beat address."""
        return max(1, (self.dram_beats - 1).bit_length())

    # -- the global buffer ---------------------------------------------------------------
    # Each buffer is an SRAM of rows; a row is a whole number of DRAM beats, which the DMA
    # engines address as "beat addresses" (row * beats_per_row + beat).

    @property
    def nbin_row_elems(self):
        return self.pe_cols

    @property
    def sb_row_elems(self):
        return self.pe_rows * self.pe_cols

    @property
    def nbout_row_elems(self):
        return self.pe_rows

    @property
    def nbin_row_bytes(self):
        return self.nbin_row_elems * ELEM_BYTES

    @property
    def sb_row_bytes(self):
        return self.sb_row_elems * ELEM_BYTES

    @property
    def nbout_row_bytes(self):
        return self.nbout_row_elems * ELEM_BYTES

    @property
    def nbin_rows(self):
        return self.nbin_bytes // self.nbin_row_bytes

    @property
    def sb_rows(self):
        return self.sb_bytes // self.sb_row_bytes

    @property
    def nbout_rows(self):
        return self.nbout_bytes // self.nbout_row_bytes

    def buffer_geometry(self, buf):
        """``(rows, row_elems)`` of a global-buffer bank, by :class:`dypipe.sw.isa.Buf` value."""
        return [(self.nbin_rows, self.nbin_row_elems),
                (self.sb_rows, self.sb_row_elems),
                (self.nbout_rows, self.nbout_row_elems)][getattr(buf, "value", buf)]

    # -- the context buffer and instruction memory ---------------------------------------

    @property
    def cb_words(self):
        return self.cb_bytes // 4

    @property
    def cb_slots(self):
        return self.cb_words // self.ctx_slot_words

    # -- identity ------------------------------------------------------------------------

    def as_dict(self):
        return dataclasses.asdict(self)

    @property
    def key(self):
        """Name of this configuration's build directory: the preset name plus a hash of
        every parameter, so that an edited preset never reuses a stale build."""
        digest = hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()
        return f"{self.name}-{digest[:8]}"


KB = 1024
MB = 1024 * KB

PRESETS = {
    # Fast to build and simulate; used by most tests.
    "small": Config(
        name="small", pe_rows=4, pe_cols=8, frac_bits=8, acc_bits=48,
        dram_bytes_per_cycle=8, dram_latency=10, dram_bytes=16 * MB,
        nbin_bytes=4 * KB, sb_bytes=16 * KB, nbout_bytes=2 * KB,
        cb_bytes=1 * KB, ctx_slot_words=16, imem_words=16384, func_words=1024,
        task_ring=8, templates=32),
    # Table 1 of the paper: 32 x 64 PEs, 32 GB/s at 1 GHz, 1008 KB global buffer + 16 KB CB.
    "paper": Config(
        name="paper", pe_rows=32, pe_cols=64, frac_bits=8, acc_bits=48,
        dram_bytes_per_cycle=32, dram_latency=100, dram_bytes=256 * MB,
        nbin_bytes=384 * KB, sb_bytes=512 * KB, nbout_bytes=112 * KB,
        cb_bytes=16 * KB, ctx_slot_words=16, imem_words=16384, func_words=1024,
        task_ring=16, templates=32),
}


def get_config(name):
    """The preset called ``name``; raises :class:`ValueError` naming the presets there are."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown configuration {name!r}; presets are: "
                         f"{', '.join(sorted(PRESETS))}") from None


_SUFFIXES = {"K": KB, "M": MB}


def with_overrides(config, settings):
    """``config`` with ``settings`` (``"FIELD=VALUE"`` strings, as ``--set`` takes them) applied;
    a value is an integer, optionally with a ``K`` or ``M`` suffix (times 1024, 1024**2).
    The preset's name stays (workloads size themselves by it); :attr:`Config.key` changes, so
    the variant gets a build of its own. Raises :class:`ValueError` naming the bad setting."""
    fields = [f.name for f in dataclasses.fields(Config) if f.name != "name"]
    changes = {}
    for setting in settings or ():
        field, sep, text = setting.partition("=")
        field, text = field.strip(), text.strip()
        if not sep or field not in fields:
            raise ValueError(f"--set {setting!r}: expected FIELD=VALUE with FIELD one of "
                             f"{', '.join(fields)}")
        scale = _SUFFIXES.get(text[-1:].upper(), 1) if text else 1
        digits = text[:-1] if scale != 1 else text
        try:
            changes[field] = int(digits, 0) * scale
        except ValueError:
            raise ValueError(f"--set {setting!r}: {text!r} is not an integer") from None
    if not changes:
        return config
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as e:
        raise ValueError(f"--set {', '.join(settings)}: {e}") from None
