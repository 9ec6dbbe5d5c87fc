"""Task templates (TPL, TPLCTX, TPLPC, SPAWN) on the RTL: a spawned task is the task its
template and operands describe, whatever happens to the template afterwards; bad definitions
and spawns stop the machine with an error naming the instruction. Through Verilator."""

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.functions import LOAD, STORE, VEC, dma_params
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Act, Buf, Err, Op, Operand, Space, Unit, VecFn, decode, encode
from dypipe.sw.program import ARG, ProgramBuilder, Reg
from dypipe.sw.workload import Workload
from dypipe.tb.runner import run_workload

from test_errors import run_expecting

pytestmark = pytest.mark.verilator
CFG = PRESETS["small"]
V = CFG.beat_elems


def copy_program(order, *, redefine_every=0, define_as_task=False):
    """Copy ``len(order)`` beats from ``src`` to ``dst`` through NBin: beat ``i`` is loaded by
    a spawn of a load template and stored by a spawn of a store template, beat ``order[k]`` in
    step ``k``. With ``redefine_every``, both templates are defined again (with their base
    moved, the operands moved back) every that many steps, while spawned tasks are still in
    flight. With ``define_as_task``, the definitions are the tasks of beat ``shift`` (TPLTASK)
    and that beat is not spawned."""
    n = len(order)
    image = DramImage(CFG)
    data = (np.arange(n * V) * 3 - 500).astype(np.int16)
    src = image.alloc("src", n * V, data)
    dst = image.alloc("dst", n * V)
    pb = ProgramBuilder(CFG)
    beat, slot = Reg(4), Reg(5)
    templates, shift = None, 0

    def define(shift):
        # dram beat = base + operand a; NBin beat = operand b.
        load = pb.define(LOAD[Buf.NBIN], **dma_params(dram_addr=ARG[0] + src.beat + shift,
                                                      buf_addr=ARG[1], row_beats=1),
                         reads=[(Space.DRAM, ARG[0] + src.beat + shift, 1)],
                         writes=[(Space.NBIN, ARG[1], 1)], task=define_as_task)
        store = pb.define(STORE[Buf.NBIN], **dma_params(dram_addr=ARG[0] + dst.beat + shift,
                                                        buf_addr=ARG[1], row_beats=1),
                          reads=[(Space.NBIN, ARG[1], 1)],
                          writes=[(Space.DRAM, ARG[0] + dst.beat + shift, 1)],
                          task=define_as_task)
        return load, store

    for k, i in enumerate(order):
        if define_as_task and k == 0:
            shift = i
            templates = define(shift)   # the tasks of beat i, in NBin beat 0
            continue
        if templates is None or (redefine_every and k % redefine_every == 0):
            shift = (k // max(1, redefine_every)) % 5
            templates = define(shift)
        pb.li(beat, i - shift)
        pb.li(slot, k % 7)          # NBin beats are reused: the hazards order them
        for template in templates:
            pb.spawn(template, beat, slot)
    pb.halt()
    expected = np.zeros(n * V, np.int16)
    for i in order:
        expected[i * V:(i + 1) * V] = data[i * V:(i + 1) * V]
    return Workload(name="templates", mode="dypipe", config=CFG,
                    program=pb.assemble(image=image), image=image, expected={"dst": expected})


def test_spawns_copy_through_templates():
    r = run_workload(copy_program(list(range(24))))
    assert r.verified, r.mismatches
    assert r.counters["tasks"] == 48


def test_redefined_templates_leave_spawned_tasks_alone():
    """A SPAWN copies its template into the task's context slot: defining the template again
    at once (before the spawned tasks ran) changes only later spawns."""
    order = list(np.random.default_rng(3).permutation(40))
    r = run_workload(copy_program(order, redefine_every=3))
    assert r.verified, r.mismatches


def test_definition_that_is_also_a_task():
    """TPLTASK: the definition commits the task with the template's own values, and later
    spawns add their operands to them."""
    workload = copy_program([5, 0, 1, 2, 3, 4, 6, 7, 8, 9], define_as_task=True)
    ops = [decode(w)["op"] for w in workload.program.words]
    assert ops.count(Op.TPLTASK) == 2 and ops.count(Op.SPAWN) == 18
    r = run_workload(workload)
    assert r.verified, r.mismatches
    assert r.counters["tasks"] == 20


def test_spawn_takes_one_active_cycle():
    """Every control-unit instruction of a straight-line program, SPAWN included, takes one
    active cycle (waits for the ring or the dispatcher count as stalls)."""
    workload = copy_program(list(range(24)))
    r = run_workload(workload)
    ops = [decode(w)["op"] for w in workload.program.words]
    assert ops.count(Op.SPAWN) == 48
    # The jump at pc 0 over the module functions, then the control program up to its HALT.
    main = decode(workload.program.words[0])["imm21"]
    assert ops[0] == Op.JAL and Op.HALT not in ops[:main]
    assert r.counters["ctrl_active"] == 1 + ops.index(Op.HALT) - main + 1


# -- errors ----------------------------------------------------------------------------------

def test_spawn_of_undefined_template():
    e = run_expecting("li r2, 1\nspawn 7, r2, r0, r0, r0\nhalt\n", Err.BAD_TASK, Unit.CTRL,
                      Op.SPAWN)
    assert e.addr == 7


def test_template_number_beyond_the_table():
    e = run_expecting(f"tpl {CFG.templates}\nhalt\n", Err.BAD_PARAM, Unit.CTRL, Op.TPL)
    assert e.addr == CFG.templates
    e = run_expecting(f"spawn {CFG.templates}, r0, r0, r0, r0\nhalt\n", Err.BAD_PARAM,
                      Unit.CTRL, Op.SPAWN)
    assert e.addr == CFG.templates


def test_template_context_offset_outside_slot():
    run_expecting(f"tpl 0\ntplctx r0, {CFG.ctx_slot_words}, a\nhalt\n", Err.CTX_RANGE,
                  Unit.CTRL, Op.TPLCTX)


def test_template_operand_that_does_not_exist():
    word = encode(Op.TPLCTX, a=0, off=1, c=len(Operand))          # operand 5: no such field
    e = run_expecting(f"tpl 0\n.word {word}\nhalt\n", Err.BAD_PARAM, Unit.CTRL, 1)
    assert e.addr == len(Operand)
    # A range naming operand 7.
    text = "tpl 0\nli32 r24, 0xE0000004\nli r25, 1\ntplpc io, r24, fn\nhalt\nfn: end\n"
    run_expecting(text, Err.BAD_PARAM, Unit.CTRL, Op.TPLPC)


def test_spawned_range_below_zero():
    # A DRAM range starting at operand a - 4, spawned with a = 1.
    lo = (-4) & ((1 << 25) - 1)
    desc = Space.DRAM.value | lo << 4 | Operand.A.value << 29
    text = (f"tpl 3\nli32 r24, {desc}\nli r25, 1\ntplpc io, r24, fn\nli r2, 1\n"
            f"spawn 3, r2, r0, r0, r0\nhalt\nfn: end\n")
    e = run_expecting(text, Err.BAD_TASK, Unit.CTRL, Op.SPAWN)
    assert e.addr == 0xFFFFFFFD


def test_template_task_with_a_range_below_zero():
    """A TPLTASK's task has the template's values: a range starting at -4 is malformed."""
    lo = (-4) & ((1 << 25) - 1)
    desc = Space.DRAM.value | lo << 4 | Operand.A.value << 29
    text = f"tpltask 3\nli32 r24, {desc}\nli r25, 1\ntplpc io, r24, fn\nhalt\nfn: end\n"
    run_expecting(text, Err.BAD_TASK, Unit.CTRL, Op.TPLPC)


def test_savepc_with_a_template_range_is_malformed():
    desc = Space.DRAM.value | 5 << 4 | Operand.B.value << 29
    text = f"li32 r24, {desc}\nli r25, 1\nsavepc io, r24, fn\nhalt\nfn: end\n"
    e = run_expecting(text, Err.BAD_TASK, Unit.CTRL, Op.SAVEPC)
    assert e.addr == desc


def test_spawn_of_a_template_whose_definition_began_again():
    """TPL t undefines t until its TPLPC: a spawn in between is an error, not a half-new
    task."""
    text = ("tpl 2\ntplpc io, r0, fn\nspawn 2, r0, r0, r0, r0\ntpl 2\n"
            "spawn 2, r0, r0, r0, r0\nhalt\nfn: end\n")
    e = run_expecting(text, Err.BAD_TASK, Unit.CTRL, 4)
    assert e.addr == 2


def test_waitn_goes_on_while_older_tasks_run():
    """WAITN k returns once at most k committed tasks are unfinished: after a long load, WAIT
    (WAITN 0) holds back a PFU task that could run beside it, WAITN 1 does not."""

    # A max over 3x3 windows of 60 pixels: 540 row reads on rows the load does not touch.
    rb = CFG.nbin_row_bytes // CFG.dram_bytes_per_cycle      # beats per NBin row
    pool = dict(dst=230, src=160, src_b=0, chunks=1, kh=3, kw=3, kh_stride=1, kw_stride=1,
                x_count=60, x_stride=1, y_count=1, y_stride=0, dst_x_stride=0,
                dst_y_stride=0, scale=0)

    cycles = {}
    for n in (0, 1):
        image = DramImage(CFG)
        src = image.alloc("src", 300 * V, np.arange(300 * V, dtype=np.int16))
        pb = ProgramBuilder(CFG)
        pb.task(LOAD[Buf.NBIN], **dma_params(dram_addr=src.beat, buf_addr=0, row_beats=300),
                writes=[(Space.NBIN, 0, 300)])
        pb.wait(at_most=n)
        pb.task(VEC[VecFn.MAX, Act.NONE], **pool, reads=[(Space.NBIN, 160 * rb, 64 * rb)],
                writes=[(Space.NBIN, 230 * rb, rb)])
        pb.halt()
        wl = Workload(name="waitn", mode="dypipe", config=CFG,
                      program=pb.assemble(image=image), image=image, expected={})
        ops = [decode(w)["op"] for w in wl.program.words]
        assert (Op.WAITN in ops) == bool(n) and (Op.WAIT in ops) == (not n)
        cycles[n] = run_workload(wl).cycles
    # The max (over 500 cycles) runs beside the load (over 300 cycles) only with WAITN 1.
    assert cycles[1] < cycles[0] - 200, cycles
