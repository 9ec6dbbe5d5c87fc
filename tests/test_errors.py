"""Bad programs stop the machine with an error the runner turns into an exception naming the
error, the module and the PC; a run past its cycle limit raises a timeout. Through Verilator."""

import pytest

from dypipe.config import PRESETS
from dypipe.sw.isa import Err, Op, Unit, encode, decode
from dypipe.tb.runner import MachineError, SimulationTimeout, run_workload

from conftest import asm_workload

pytestmark = pytest.mark.verilator
CFG = PRESETS["small"]

# A module function body that loads r2.. with DMA parameters (one plane, no plane strides).
DMA_SETUP = "\n".join(f"    li32 r{2 + i}, {{{name}}}" for i, name in enumerate(
    ("dram", "buf", "rows", "beats", "dstride", "bstride")))


def run_expecting(text, code, unit, pc):
    """Run ``text``; expect ``code`` in ``unit`` at ``pc`` (a number, or the opcode of the one
    instruction of that kind in the program)."""
    workload = asm_workload(text)
    if isinstance(pc, Op):
        pc = next(i for i, w in enumerate(workload.program.words) if decode(w)["op"] == pc)
    with pytest.raises(MachineError) as info:
        run_workload(workload)
    e = info.value
    assert (e.code, e.unit, e.pc) == (code, unit, pc), str(e)
    message = str(e)
    assert code.name in message and f"pc {pc}" in message, message
    where = "control unit" if unit == Unit.CTRL else f"{unit.name} module"
    assert where in message, message
    return e


def test_illegal_instruction_in_control_program():
    run_expecting("li r2, 5\n.word 0\nhalt\n", Err.ILLEGAL, Unit.CTRL, 1)


def test_instruction_of_another_module_is_illegal():
    text = """
        savepc io, r0, fn
        wait
        halt
    fn: li r2, 0
        mvm r2, 0          # a PFU instruction in an IO function
        end
    """
    e = run_expecting(text, Err.ILLEGAL, Unit.IO, Op.MVM)
    assert "mvm" in str(e)


def test_task_pc_past_the_module_functions():
    """The sequencers fetch only from the first func_words instructions (their copy)."""
    text = f"savepc io, r0, {CFG.func_words}\nwait\nhalt\n"
    e = run_expecting(text, Err.PC_RANGE, Unit.IO, CFG.func_words)
    assert e.addr == CFG.func_words


def test_dma_outside_dram():
    body = DMA_SETUP.format(dram=CFG.dram_beats - 2, buf=0, rows=1, beats=3, dstride=0,
                            bstride=0)
    text = f"savepc io, r0, fn\nwait\nhalt\nfn:\n{body}\n    dload nbin, r2\n    end\n"
    e = run_expecting(text, Err.DRAM_RANGE, Unit.IO, Op.DLOAD)
    assert e.addr == CFG.dram_beats, hex(e.addr)


def test_store_outside_buffer():
    beats = CFG.nbout_bytes // CFG.dram_bytes_per_cycle
    body = DMA_SETUP.format(dram=0, buf=beats - 1, rows=2, beats=1, dstride=1, bstride=1)
    text = f"savepc store, r0, fn\nwait\nhalt\nfn:\n{body}\n    dstore nbout, r2\n    end\n"
    e = run_expecting(text, Err.BUF_RANGE, Unit.STORE, Op.DSTORE)
    assert e.addr == beats


def test_control_load_outside_dram():
    words = CFG.dram_bytes // 4
    run_expecting(f"li32 r2, {words}\nlw r3, 0(r2)\nhalt\n", Err.DRAM_RANGE, Unit.CTRL, Op.LW)


def test_context_offset_outside_slot():
    text = f"savepc pfu, r0, fn\nwait\nhalt\nfn: ldc r2, {CFG.ctx_slot_words}\n    end\n"
    run_expecting(text, Err.CTX_RANGE, Unit.PFU, Op.LDC)


def test_malformed_task_record():
    # SAVEPC naming unit 3 (the control unit), which runs no tasks: the assembler refuses to
    # write it, so it goes in as a raw word.
    word = encode(Op.SAVEPC, a=Unit.CTRL.value, imm16=3)
    text = f"li r2, 1\n.word {word}\nhalt\nend\n"
    e = run_expecting(text, Err.BAD_TASK, Unit.CTRL, 1)   # the SAVEPC that committed it
    assert e.addr == Unit.CTRL.value, "err_addr names the bad unit field"


def test_runaway_program_times_out():
    with pytest.raises(SimulationTimeout):
        run_workload(asm_workload("loop: j loop\n"), max_cycles=5_000)
