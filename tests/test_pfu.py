"""PFU block tests in Amaranth's simulator: MVM against the golden model, and its errors.
(CONV and VEC: tests/test_pfu_ops.py.)"""

import numpy as np
import pytest
from amaranth import Cat, Const, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.sim import Simulator

from dypipe.config import PRESETS
from dypipe.rtl.global_buffer import GlobalBuffer
from dypipe.rtl.pfu import PFU, MacArray
from dypipe.sw import golden
from dypipe.sw.fc import block_weights
from dypipe.sw.isa import Act, Buf, Err, Op, MvmFlags, MVM_PARAMS
from dypipe.sw.program import mvm_flags

CFG = PRESETS["small"]


class Bench(wiring.Component):
    def __init__(self, config=CFG, backend="amaranth"):
        self.gbuf = GlobalBuffer(config)
        self.pfu = PFU(config, backend=backend)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.gbuf, m.submodules.pfu = self.gbuf, self.pfu
        for name in ("nbin_r", "sb_r", "nbout_r", "nbout_w", "nbin_w"):
            wiring.connect(m, getattr(self.pfu, name), getattr(self.gbuf, name))
        return m


def _beats(values, config=CFG):
    v = np.asarray(values, dtype=np.int16).view(np.uint16).reshape(-1, config.beat_elems)
    return [int.from_bytes(row.astype("<u2").tobytes(), "little") for row in v]


async def _write(ctx, gbuf, buf, beat, values, config=CFG):
    for i, word in enumerate(_beats(values, config)):
        ctx.set(gbuf.dma_w.buf, buf)
        ctx.set(gbuf.dma_w.addr, beat + i)
        ctx.set(gbuf.dma_w.data, word)
        ctx.set(gbuf.dma_w.en, 1)
        await ctx.tick()
    ctx.set(gbuf.dma_w.en, 0)


async def _read(ctx, gbuf, buf, beat, n_beats, config=CFG):
    out = []
    for i in range(n_beats):
        ctx.set(gbuf.dma_r.buf, buf)
        ctx.set(gbuf.dma_r.addr, beat + i)
        ctx.set(gbuf.dma_r.en, 1)
        await ctx.tick()
        ctx.set(gbuf.dma_r.en, 0)
        out.append(ctx.get(gbuf.dma_r.data))
    raw = b"".join(v.to_bytes(config.dram_bytes_per_cycle, "little") for v in out)
    return np.frombuffer(raw, dtype="<i2")


async def _mvm(ctx, pfu, params, flags, cycles=10_000, op=Op.MVM, names=MVM_PARAMS,
               then_imm=None):
    """Issue one macro-instruction (MVM unless told); returns ('done', cycles) or
    ('err', code, addr). ``then_imm``: the payload's imm after the handshake (the sequencer
    presents its next instruction there). The parameters change after the handshake too:
    the unit must run the command it took. It may report an error only while not ready."""
    ctx.set(pfu.cmd.macro.payload.op, op)
    for i, name in enumerate(names):
        ctx.set(pfu.cmd.macro.payload.params[i], params[name])
    ctx.set(pfu.cmd.macro.payload.imm, flags)
    ctx.set(pfu.cmd.macro.valid, 1)
    await ctx.tick()
    ctx.set(pfu.cmd.macro.valid, 0)
    if then_imm is not None:
        ctx.set(pfu.cmd.macro.payload.imm, then_imm)
    for i, name in enumerate(names):
        ctx.set(pfu.cmd.macro.payload.params[i], params[name] ^ 0x5A5)
    for n in range(cycles):
        if ctx.get(pfu.cmd.done):
            await ctx.tick()
            return ("done", n)
        if ctx.get(pfu.cmd.err):
            assert not ctx.get(pfu.cmd.macro.ready)
            return ("err", Err(ctx.get(pfu.cmd.err_code)), ctx.get(pfu.cmd.err_addr))
        await ctx.tick()
    raise AssertionError(f"{op.name} did not finish")


def _run(testbench, config=CFG, backend="amaranth"):
    bench = Bench(config, backend)
    sim = Simulator(bench)
    sim.add_clock(1e-8)
    async def bound(ctx):
        await testbench(ctx, bench)
    sim.add_testbench(bound)
    sim.run()


@pytest.mark.parametrize("n_out,n_in,act,bias", [
    (4, 8, Act.NONE, True), (12, 24, Act.RELU, True), (7, 13, Act.RELU, False),
    (9, 30, Act.NONE, True),
])
def test_mvm_matches_golden(n_out, n_in, act, bias):
    R, C = CFG.pe_rows, CFG.pe_cols
    rng = np.random.default_rng(n_out * 100 + n_in)
    x = rng.integers(-300, 300, n_in, dtype=np.int16)
    w = rng.integers(-200, 200, (n_out, n_in), dtype=np.int16)   # some outputs saturate
    b = rng.integers(-400, 400, n_out, dtype=np.int16) if bias else np.zeros(n_out, np.int16)
    kc, nb = -(-n_in // C), -(-n_out // R)
    x_pad = np.zeros(kc * C, np.int16)
    x_pad[:n_in] = x
    b_pad = np.zeros(nb * R, np.int16)
    b_pad[:n_out] = b
    expected = golden.fc(x, w, b, CFG.frac_bits, act)
    dst, src, wrow = 3, 5, 2          # deliberately not at row 0
    nbin_bpr, sb_bpr, out_bpr = (CFG.nbin_row_elems // CFG.beat_elems,
                                 CFG.sb_row_elems // CFG.beat_elems,
                                 CFG.nbout_row_elems // CFG.beat_elems)
    seen = {}

    async def testbench(ctx, bench):
        g = bench.gbuf
        await _write(ctx, g, Buf.NBIN, src * nbin_bpr, x_pad)
        await _write(ctx, g, Buf.SB, wrow * sb_bpr, block_weights(w, R, C))
        await _write(ctx, g, Buf.NBOUT, dst * out_bpr, b_pad if bias else
                     np.full(nb * R, 12345, np.int16))    # ignored without the bias flag
        status = await _mvm(ctx, bench.pfu, dict(dst=dst, src=src, weights=wrow, k_chunks=kc,
                                                 m_blocks=nb), mvm_flags(bias, act))
        seen["status"] = status
        seen["y"] = await _read(ctx, g, Buf.NBOUT, dst * out_bpr, nb * out_bpr)

    _run(testbench)
    assert seen["status"][0] == "done"
    # One row pair a cycle, then the pipeline drains: docs/architecture.md's rows + 8 cycles
    # and the check cycle, counted from the cycle after the handshake to the one before done.
    assert seen["status"][1] == nb * kc + 7, (seen["status"], nb * kc)
    got = seen["y"][:n_out]
    for i, (g_, e_) in enumerate(zip(got, expected)):
        assert g_ == e_, f"y[{i}] = {g_}, expected {e_}"


@pytest.mark.parametrize("params,flags,code", [
    (dict(dst=0, src=0, weights=0, k_chunks=0, m_blocks=1), 0, Err.BAD_PARAM),
    (dict(dst=0, src=CFG.nbin_rows - 1, weights=0, k_chunks=2, m_blocks=1), 0, Err.BUF_RANGE),
    (dict(dst=0, src=0, weights=CFG.sb_rows - 2, k_chunks=1, m_blocks=3), 0, Err.BUF_RANGE),
    (dict(dst=CFG.nbout_rows, src=0, weights=0, k_chunks=1, m_blocks=1), 0, Err.BUF_RANGE),
    (dict(dst=0, src=0, weights=0, k_chunks=1, m_blocks=1), 1 << MvmFlags.size, Err.BAD_PARAM),
])
def test_mvm_errors(params, flags, code):
    seen = {}

    async def testbench(ctx, bench):
        seen["status"] = await _mvm(ctx, bench.pfu, params, flags)

    _run(testbench)
    assert seen["status"][:2] == ("err", code), seen["status"]


class _Mult18x18dModel(Elaboratable):
    """Lattice's MULT18X18D as this project uses it (the sysDSP user guide's reading): ``P``
    is ``A * B``, signed where ``SIGNEDA`` / ``SIGNEDB`` are high, through the output register
    on ``CLK0``'s edges with ``CE0`` when ``REG_OUTPUT_CLK`` is ``"CLK0"``. Only the pins and
    parameters :func:`dypipe.rtl.backends.ecp5_product` may set are accepted."""

    def __init__(self, **kwargs):
        self.params = {k[2:]: v for k, v in kwargs.items() if k.startswith("p_")}
        self.pins = {k[2:]: v for k, v in kwargs.items() if k[:2] in ("i_", "o_")}

    def elaborate(self, platform):
        m = Module()
        pin = self.pins
        for name in ("SIGNEDA", "SIGNEDB"):
            assert isinstance(pin[name], Const) and pin[name].value == 1, name
        a = Cat(*(pin[f"A{i}"] for i in range(18))).as_signed()
        b = Cat(*(pin[f"B{i}"] for i in range(18))).as_signed()
        p = Cat(*(pin[f"P{i}"] for i in range(36)))
        assert all(Value.cast(pin[f"C{i}"]).value == 0 for i in range(18))
        assert self.params == {"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0",
                               "REG_OUTPUT_RST": "RST0"}, self.params
        assert Value.cast(pin["RST0"]).value == 0
        with m.If(pin["CE0"]):
            m.d.sync += p.eq(a * b)
        return m


def model_ecp5_blocks(monkeypatch):
    """Build every MULT18X18D of ``backend="ecp5"`` as :class:`_Mult18x18dModel`, which
    Amaranth's simulator runs."""
    import dypipe.rtl.backends as backends_module
    real = backends_module.Instance

    def instance(kind, **kwargs):
        return _Mult18x18dModel(**kwargs) if kind == "MULT18X18D" else real(kind, **kwargs)

    monkeypatch.setattr(backends_module, "Instance", instance)


def test_ecp5_mac_array_matches_the_amaranth_one(monkeypatch):
    """``MacArray(backend="ecp5")``, its MULT18X18D blocks simulated by a model of the block,
    gives the same sums as the Amaranth array in every cycle: the pins (bit order, sign
    extension of both operands, the product's bits) are wired as the block reads them.
    Random operands with the extremes among them, ``en`` on and off. (The products' enable
    cannot show: they are summed only on the cycle after ``en``.)"""
    model_ecp5_blocks(monkeypatch)
    R, C = 4, 8
    top = Module()
    top.submodules.ref = ref = MacArray(R, C, backend="amaranth")
    top.submodules.dsp = dsp = MacArray(R, C, backend="ecp5")
    en, x, w = Signal(), Signal(C * 16), Signal(R * C * 16)
    for array in (ref, dsp):
        top.d.comb += [array.en.eq(en), array.x.eq(x), array.w.eq(w)]
    rng = np.random.default_rng(7)
    extremes = np.array([-32768, 32767, -1, 0, 1], dtype=np.int64)

    def draw(n):
        v = rng.integers(-32768, 32768, n)
        pick = rng.random(n) < 0.3
        v[pick] = rng.choice(extremes, pick.sum())
        return sum((int(e) & 0xFFFF) << (16 * i) for i, e in enumerate(v))

    sums_seen = set()

    async def bench(ctx):
        for cycle in range(60):
            ctx.set(en, int(rng.random() < 0.7))
            ctx.set(x, draw(C))
            ctx.set(w, draw(R * C))
            await ctx.tick()
            got, want = ctx.get(dsp.sums), ctx.get(ref.sums)
            assert got == want, f"cycle {cycle}: {got:#x} != {want:#x}"
            sums_seen.add(want)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(sums_seen) > 30       # the sums moved: the check compared real products
