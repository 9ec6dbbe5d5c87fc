"""CONV and VEC in Amaranth's simulator against a numpy model of the instruction formulas in
dypipe.sw.isa (CONV_PARAMS, VEC_PARAMS): random parameters, every bank compared whole, so a
stray write shows too."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck, Phase

from dypipe.sw import golden
from dypipe.sw.isa import AVG_SHIFT, Act, Buf, Err, Op, VecFn, CONV_PARAMS, VEC_PARAMS
from dypipe.sw.program import mvm_flags, vec_flags
from dypipe.sw.pwl import activate
from test_pfu import CFG as SMALL, _run, _write, _read, _mvm, model_ecp5_blocks

#: ``small`` with fewer rows, so that writing and reading every bank is quick.
CFG = dataclasses.replace(SMALL, nbin_bytes=128 * SMALL.nbin_row_bytes,
                          sb_bytes=64 * SMALL.sb_row_bytes,
                          nbout_bytes=128 * SMALL.nbout_row_bytes)
#: No shrinking: one example costs seconds in Amaranth's simulator; a failure prints its
#: parameters, which is enough to reproduce it.
FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
            phases=[Phase.explicit, Phase.generate])
R, C = CFG.pe_rows, CFG.pe_cols
ROWS = {Buf.NBIN: CFG.nbin_rows, Buf.SB: CFG.sb_rows, Buf.NBOUT: CFG.nbout_rows}
ELEMS = {Buf.NBIN: C, Buf.SB: R * C, Buf.NBOUT: R}


def _sat(v):
    return np.clip(v, -(1 << 15), (1 << 15) - 1)


def conv_model(banks, p, bias, act, wshift=0):
    """CONV as CONV_PARAMS states it: NBin by elements (a chunk may start at any lane), SB and
    NBout by rows; weights with ``frac_bits + wshift`` fraction bits."""
    nbin, sb, nbout = banks[Buf.NBIN].reshape(-1), banks[Buf.SB], banks[Buf.NBOUT].copy()
    f = CFG.frac_bits
    for y in range(p["y_count"]):
        for x in range(p["x_count"]):
            for i in range(p["m_blocks"]):
                acc = np.zeros(R, np.int64)
                if bias:
                    acc += nbout[p["bias"] + i].astype(np.int64) << (f + wshift)
                for h in range(p["kh"]):
                    for k in range(p["k_chunks"]):
                        w = sb[p["weights"] + (i * p["kh"] + h) * p["k_chunks"] + k]
                        e = (p["src"] + y * p["y_stride"] + x * p["x_stride"]
                             + h * p["kh_stride"] + k * C)
                        v = nbin[e:e + C]
                        acc += w.reshape(R, C).astype(np.int64) @ v.astype(np.int64)
                out = p["dst"] + y * p["dst_y_stride"] + x * p["dst_x_stride"] + i
                nbout[out] = golden.write_back(acc, f, act, w_shift=wshift)
    return nbout


def vec_model(nbin, p, fn, act):
    out = nbin.copy()
    f = CFG.frac_bits
    for y in range(p["y_count"]):
        for x in range(p["x_count"]):
            for c in range(p["chunks"]):
                base = p["src"] + y * p["y_stride"] + x * p["x_stride"] + c
                if fn in (VecFn.ADD, VecFn.MUL):
                    a = nbin[base].astype(np.int64)
                    b = nbin[p["src_b"] - p["src"] + base].astype(np.int64)
                    v = _sat(a + b) if fn == VecFn.ADD else _sat((a * b + (1 << (f - 1))) >> f)
                else:
                    win = np.array([nbin[base + i * p["kh_stride"] + j * p["kw_stride"]]
                                    for i in range(p["kh"]) for j in range(p["kw"])], np.int64)
                    if fn == VecFn.MAX:
                        v = win.max(axis=0)
                    elif fn == VecFn.AVG:
                        v = _sat((win.sum(axis=0) * p["scale"] + (1 << (AVG_SHIFT - 1)))
                                 >> AVG_SHIFT)
                    else:
                        v = win[0]
                dst = p["dst"] + y * p["dst_y_stride"] + x * p["dst_x_stride"] + c
                out[dst] = activate(act, v.astype(np.int16), f)
    return out


def _random_banks(rng):
    return {buf: rng.integers(-400, 400, (ROWS[buf], ELEMS[buf]), dtype=np.int16)
            for buf in Buf}


def _simulate(banks, op, names, params, flags, read=(Buf.NBOUT,), backend="amaranth"):
    seen = {}

    async def testbench(ctx, bench):
        for buf, data in banks.items():
            await _write(ctx, bench.gbuf, buf, 0, data.reshape(-1), CFG)
        seen["status"] = await _mvm(ctx, bench.pfu, params, flags, cycles=50_000, op=op,
                                    names=names)
        for buf in read:
            beats = ROWS[buf] * ELEMS[buf] // CFG.beat_elems
            seen[buf] = (await _read(ctx, bench.gbuf, buf, 0, beats, CFG)).reshape(ROWS[buf], -1)

    _run(testbench, CFG, backend)
    return seen


@st.composite
def conv_params(draw):
    p = {name: draw(st.integers(1, 3)) for name in ("k_chunks", "m_blocks", "kh", "x_count",
                                                   "y_count")}
    p["kh_stride"] = draw(st.integers(0, 5))
    p["x_stride"] = draw(st.integers(0, 3))
    p["y_stride"] = draw(st.integers(0, 8))
    p["dst_x_stride"] = draw(st.integers(p["m_blocks"], p["m_blocks"] + 2))
    p["dst_y_stride"] = p["dst_x_stride"] * p["x_count"] + draw(st.integers(0, 2))
    p["src"] = draw(st.integers(0, 20))
    p["weights"] = draw(st.integers(0, 30))
    p["bias"] = draw(st.integers(0, 8))
    p["dst"] = p["bias"] + p["m_blocks"] + draw(st.integers(0, 8))
    return p


@settings(max_examples=10, **FAST)
@given(p=conv_params(), bias=st.booleans(), act=st.sampled_from(list(Act)),
       wshift=st.integers(0, 15), seed=st.integers(0, 1000))
def test_conv_matches_model(p, bias, act, wshift, seed):
    banks = _random_banks(np.random.default_rng(seed))
    seen = _simulate(banks, Op.CONV, CONV_PARAMS, p, mvm_flags(bias, act, wshift=wshift))
    assert seen["status"][0] == "done", seen["status"]
    work = p["y_count"] * p["x_count"] * p["m_blocks"] * p["kh"] * p["k_chunks"]
    assert seen["status"][1] <= work + 8, (seen["status"], work)   # one row pair a cycle
    np.testing.assert_array_equal(seen[Buf.NBOUT], conv_model(banks, p, bias, act, wshift))


@st.composite
def vec_params(draw):
    fn = draw(st.sampled_from(list(VecFn)))
    p = {name: draw(st.integers(1, 3)) for name in ("chunks", "kh", "kw", "x_count", "y_count")}
    p.update(kh_stride=draw(st.integers(0, 4)), kw_stride=draw(st.integers(0, 3)),
             x_stride=draw(st.integers(0, 3)), y_stride=draw(st.integers(0, 9)))
    p["src"] = draw(st.integers(0, 6))
    p["src_b"] = draw(st.integers(0, 12))
    p["dst_x_stride"] = p["chunks"] + draw(st.integers(0, 2))
    p["dst_y_stride"] = p["dst_x_stride"] * p["x_count"] + draw(st.integers(0, 2))
    p["dst"] = 48 + draw(st.integers(0, 2))          # clear of every input row
    p["scale"] = draw(st.integers(0, 1 << 16))
    return fn, p


@settings(max_examples=12, **FAST)
@given(fp=vec_params(), act=st.sampled_from(list(Act)), seed=st.integers(0, 1000))
def test_vec_matches_model(fp, act, seed):
    fn, p = fp
    banks = _random_banks(np.random.default_rng(seed))
    seen = _simulate(banks, Op.VEC, VEC_PARAMS, p, vec_flags(fn, act), read=(Buf.NBIN,))
    assert seen["status"][0] == "done", seen["status"]
    window = 2 if fn in (VecFn.ADD, VecFn.MUL) else p["kh"] * p["kw"]
    work = p["y_count"] * p["x_count"] * p["chunks"] * window
    assert seen["status"][1] <= work + 8, (seen["status"], work)
    np.testing.assert_array_equal(seen[Buf.NBIN], vec_model(banks[Buf.NBIN], p, fn, act))


def test_conv_on_ecp5_blocks(monkeypatch):
    """The ECP5 build's MAC array (its products in MULT18X18D blocks, simulated by a model)
    inside the conv engine gives the model's rows."""
    model_ecp5_blocks(monkeypatch)
    banks = _random_banks(np.random.default_rng(4))
    p = dict(k_chunks=2, m_blocks=2, kh=2, x_count=2, y_count=1, kh_stride=3, x_stride=1,
             y_stride=0, dst_x_stride=2, dst_y_stride=4, src=1, weights=2, bias=0, dst=6)
    seen = _simulate(banks, Op.CONV, CONV_PARAMS, p, mvm_flags(True, Act.RELU), backend="ecp5")
    assert seen["status"][0] == "done", seen["status"]
    np.testing.assert_array_equal(seen[Buf.NBOUT], conv_model(banks, p, True, Act.RELU))


@pytest.mark.parametrize("parts,act", [((2, 3), Act.RELU), ((1, 1, 2), Act.TANH)])
def test_split_accumulation_equals_one_instruction(parts, act):
    """One dot product over ``sum(parts)`` chunks split into MVMs that keep (``acc_out``) and
    resume (``acc_in``) the accumulators writes exactly what one MVM writes: the bias only at
    the start, the activation only at the end, no rounding in between."""
    banks = _random_banks(np.random.default_rng(len(parts)))
    total = sum(parts)
    whole = _conv(src=3 * C, weights=5, k_chunks=total, bias=2, dst=9)
    expected = conv_model(banks, whole, True, act)
    seen = {}

    async def testbench(ctx, bench):
        for buf, data in banks.items():
            await _write(ctx, bench.gbuf, buf, 0, data.reshape(-1), CFG)
        done = 0
        for i, k in enumerate(parts):
            first, last = i == 0, i == len(parts) - 1
            p = _conv(src=(3 + done) * C, weights=5 + done, k_chunks=k, bias=2, dst=9)
            flags = mvm_flags(bias=first, act=act if last else Act.NONE, acc_in=not first,
                              acc_out=not last)
            status = await _mvm(ctx, bench.pfu, p, flags, op=Op.CONV, names=CONV_PARAMS)
            assert status[0] == "done", status
            done += k
        beats = ROWS[Buf.NBOUT] * ELEMS[Buf.NBOUT] // CFG.beat_elems
        seen["nbout"] = (await _read(ctx, bench.gbuf, Buf.NBOUT, 0, beats, CFG)).reshape(
            ROWS[Buf.NBOUT], -1)

    _run(testbench, CFG)
    np.testing.assert_array_equal(seen["nbout"], expected)


def _conv(**kw):
    p = dict(dst=0, src=0, weights=0, k_chunks=1, m_blocks=1, bias=0, kh=1, kh_stride=0,
             x_count=1, x_stride=0, y_count=1, y_stride=0, dst_x_stride=0, dst_y_stride=0)
    return {**p, **kw}


def _vec(**kw):
    p = dict(dst=0, src=0, src_b=0, chunks=1, kh=1, kw=1, kh_stride=0, kw_stride=0, x_count=1,
             x_stride=0, y_count=1, y_stride=0, dst_x_stride=0, dst_y_stride=0, scale=0)
    return {**p, **kw}


@pytest.mark.parametrize("op,names,params,flags,code,addr", [
    (Op.CONV, CONV_PARAMS, _conv(kh=0), 0, Err.BAD_PARAM, 0),
    (Op.CONV, CONV_PARAMS, _conv(y_count=2, y_stride=CFG.nbin_rows * C - C + 1), 0,
     Err.BUF_RANGE, CFG.nbin_rows * C),                  # NBin counts elements
    (Op.CONV, CONV_PARAMS, _conv(kh=3, k_chunks=2, m_blocks=2, weights=CFG.sb_rows - 11), 0,
     Err.BUF_RANGE, CFG.sb_rows),
    (Op.CONV, CONV_PARAMS, _conv(x_count=3, dst_x_stride=CFG.nbout_rows // 2), 0,
     Err.BUF_RANGE, CFG.nbout_rows),
    (Op.CONV, CONV_PARAMS, _conv(bias=CFG.nbout_rows), mvm_flags(bias=True), Err.BUF_RANGE,
     CFG.nbout_rows),
    (Op.VEC, VEC_PARAMS, _vec(kw=0), vec_flags(VecFn.MAX), Err.BAD_PARAM, 0),
    (Op.VEC, VEC_PARAMS, _vec(), 7, Err.BAD_PARAM, 0),
    (Op.VEC, VEC_PARAMS, _vec(kh=257, kw=256), vec_flags(VecFn.AVG), Err.BAD_PARAM, 0),
    (Op.VEC, VEC_PARAMS, _vec(scale=1 << 20), vec_flags(VecFn.AVG), Err.BAD_PARAM, 0),
    (Op.CONV, CONV_PARAMS, _conv(x_stride=1 << 20), 0, Err.BAD_PARAM, 0),
    (Op.CONV, CONV_PARAMS, _conv(m_blocks=2), mvm_flags(acc_out=True), Err.BAD_PARAM, 0),
    (Op.CONV, CONV_PARAMS, _conv(x_count=2), mvm_flags(acc_in=True), Err.BAD_PARAM, 0),
    (Op.VEC, VEC_PARAMS, _vec(kh=2, kh_stride=CFG.nbin_rows - 1, src=1), vec_flags(VecFn.AVG),
     Err.BUF_RANGE, CFG.nbin_rows),
    (Op.VEC, VEC_PARAMS, _vec(src_b=CFG.nbin_rows), vec_flags(VecFn.ADD), Err.BUF_RANGE,
     CFG.nbin_rows),
    (Op.VEC, VEC_PARAMS, _vec(x_count=2, dst_x_stride=CFG.nbin_rows), vec_flags(VecFn.COPY),
     Err.BUF_RANGE, CFG.nbin_rows),
])
def test_errors(op, names, params, flags, code, addr):
    seen = _simulate({}, op, names, params, flags, read=())
    assert seen["status"] == ("err", code, addr)


@pytest.mark.parametrize("op,names,params,flags", [
    (Op.VEC, VEC_PARAMS, _vec(chunks=3, src=3, src_b=6, dst=9), vec_flags(VecFn.MUL)),
    (Op.CONV, CONV_PARAMS, _conv(), mvm_flags(bias=True)),
])
def test_flags_checked_as_issued(op, names, params, flags):
    """The flags are checked as the instruction gave them, not as the payload reads a cycle
    later (a seq2seq cell's VEC followed by ``addi r12, r2, 33`` once failed BAD_PARAM)."""
    seen = {}

    async def testbench(ctx, bench):
        seen["status"] = await _mvm(ctx, bench.pfu, params, flags, op=op, names=names,
                                    then_imm=0xFFFF)
    _run(testbench, CFG)
    assert seen["status"][0] == "done"


@pytest.mark.parametrize("fn,dst", [(VecFn.ADD, "src"), (VecFn.MUL, "src_b"),
                                    (VecFn.COPY, "src")])
def test_elementwise_vec_may_work_in_place(fn, dst):
    """An elementwise VEC whose output rows are its input rows (a or b) reads each row before
    it writes it: the result is the instruction's formula on the rows as they were."""
    p = _vec(src=4, src_b=20, chunks=6, x_count=2, x_stride=6, dst_x_stride=6)
    p["dst"] = p[dst]
    banks = _random_banks(np.random.default_rng(5))
    seen = _simulate(banks, Op.VEC, VEC_PARAMS, p, vec_flags(fn, Act.TANH), read=(Buf.NBIN,))
    assert seen["status"][0] == "done", seen["status"]
    np.testing.assert_array_equal(seen[Buf.NBIN], vec_model(banks[Buf.NBIN], p, fn, Act.TANH))
