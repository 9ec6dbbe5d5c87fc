"""Assembler and disassembler (dypipe.sw.asm) against the encodings of dypipe.sw.isa."""

import pytest
from hypothesis import given, settings, strategies as st

from dypipe.sw.asm import AsmError, Program, assemble, disassemble, disassemble_word
from dypipe.sw.isa import (Op, Fmt, OPS, FIELDS, NUM_REGS, MODULE_UNITS, Unit, Buf, Act,
                           MvmFlags, VecFn, Operand, encode, decode)
from dypipe.sw.program import vec_flags

SHIFTS = {Op.SLLI, Op.SRLI, Op.SRAI}


def flags(bias, act, acc_in=0, acc_out=0, wshift=0):
    """MVM flags packed from the MvmFlags layout."""
    values = {"bias": int(bias), "act": Act(act).value, "acc_in": acc_in, "acc_out": acc_out,
              "wshift": wshift}
    return sum(values[name] << field.offset for name, field in MvmFlags)


def words_of(text):
    return assemble(text).words


def canon(line):
    return " ".join(line.split())


# -- every instruction -----------------------------------------------------------------------

#: Per format: operand text, and the fields it must encode to, for an instruction at pc 2 with
#: the label ``back`` at pc 0.
SAMPLES = {
    Fmt.NONE: ("", {}),
    Fmt.R: ("r1, r2, r31", dict(a=1, b=2, c=31)),
    Fmt.I: ("r3, r4, -7", dict(a=3, b=4, imm16=-7)),
    Fmt.IU: ("r5, r6, 0x1f", dict(a=5, b=6, imm16=31)),
    Fmt.LI: ("r7, -1048576", dict(a=7, imm21=-(1 << 20))),
    Fmt.LUI: ("r8, 0xffff", dict(a=8, imm16=0xFFFF)),
    Fmt.LOAD: ("r9, -8(r10)", dict(a=9, b=10, imm16=-8)),
    Fmt.STORE: ("r11, 0b110(r12)", dict(a=11, b=12, imm16=6)),
    Fmt.BRANCH: ("r13, r14, back", dict(a=13, b=14, imm16=-2)),
    Fmt.JAL: ("r15, back", dict(a=15, imm21=-2)),
    Fmt.CTX: ("r16, 12", dict(a=16, imm16=12)),
    Fmt.LDC: ("r17, 65535", dict(a=17, imm16=65535)),
    Fmt.TASK: ("Store, r24, back", dict(a=Unit.STORE.value, b=24, imm16=0)),
    Fmt.OVERLAY: ("r21, r22, back", dict(a=21, b=22, imm16=0)),
    Fmt.DEST: ("back", dict(imm16=0)),
    Fmt.TMPL: ("63", dict(imm16=63)),
    Fmt.COUNT: ("65535", dict(imm16=65535)),
    Fmt.TPLCTX: ("r9, 2047, d", dict(a=9, off=2047, c=Operand.D.value)),
    Fmt.SPAWN: ("17, r1, r30, r0, r31", dict(tmpl=17, a=1, b=30, c=0, d=31)),
    Fmt.DMA: ("nbout, r18", dict(a=Buf.NBOUT.value, b=18)),
    Fmt.MVM: ("r19, bias|relu", dict(b=19, imm16=flags(True, Act.RELU))),
    Fmt.VEC: ("r20, avg|tanh", dict(b=20, imm16=vec_flags(VecFn.AVG, Act.TANH))),
}


def test_samples_cover_every_format():
    assert set(SAMPLES) == set(Fmt)


@pytest.mark.parametrize("op", list(OPS), ids=lambda op: op.name)
def test_every_op_assembles(op):
    operands, fields = SAMPLES[OPS[op][0]]
    for mnemonic in (op.name.lower(), op.name):
        program = assemble(f"back: nop\n    nop\n    {mnemonic} {operands}  # here\n")
        assert program.words[2] == encode(op, **fields)
        decoded = decode(program.words[2])
        assert decoded["op"] is op
        for name, value in fields.items():
            assert decoded[name] == value & ((1 << FIELDS[name][1]) - 1)
        assert program.lines == [1, 2, 3]
        assert words_of("nop\nnop\n" + disassemble_word(program.words[2], 2)) == program.words


@pytest.mark.parametrize("text, word", [
    # Hand-computed from FIELDS: op [31:26], a [25:21], b [20:16], c [15:11], imm16 [15:0],
    # imm21 [20:0].
    ("add r1, r2, r3", 0x14221800),         # 5 << 26 | 1 << 21 | 2 << 16 | 3 << 11
    ("addi r1, r2, -1", 0x4022FFFF),        # 16 << 26 | 1 << 21 | 2 << 16 | 0xffff
    ("li r31, -1", 0x0FFFFFFF),             # 3 << 26 | 31 << 21 | 0x1fffff
    ("jal r0, .-1", 0x801FFFFF),            # 32 << 26 | 0x1fffff
    ("savepc pfu, r24, 5", 0x8C380005),     # 35 << 26 | 1 << 21 | 24 << 16 | 5
    ("mvm r3, bias|relu", 0xB0030003),      # 44 << 26 | 3 << 16 | bias << 0 | relu << 1
    ("dstore sb, r7", 0xAC270000),          # 43 << 26 | 1 << 21 | 7 << 16
    ("sw r4, -2(r5)", 0x6485FFFE),          # 25 << 26 | 4 << 21 | 5 << 16 | 0xfffe
    ("overlay r1, r31, 5", 0x943F0005),     # 37 << 26 | 1 << 21 | 31 << 16 | 5
    ("prefetch r1, r31, 5", 0x983F0005),    # 38 << 26 | 1 << 21 | 31 << 16 | 5
    ("enter 300", 0x9C00012C),              # 39 << 26 | 300
    ("tpl 5", 0xC4000005),                  # 49 << 26 | 5
    ("tplctx r3, 7, b", 0xC8601007),        # 50 << 26 | 3 << 21 | b (2) << 11 | 7
    ("tplpc store, r24, 9", 0xCC580009),    # 51 << 26 | 2 << 21 | 24 << 16 | 9
    ("spawn 33, r1, r2, r3, r4", 0xD0221921),   # 52 << 26 | 1 << 21 | 2 << 16 | 3 << 11
                                                # | 4 << 6 | 33
])
def test_absolute_encodings(text, word):
    assert words_of(text) == [word]
    assert canon(disassemble_word(word, pc=1)) == canon(text.replace(".-1", "0"))


def test_mvm_flags():
    assert words_of("mvm r1, 0\nmvm r1, none\nmvm r1, relu\nmvm r1, BIAS\nmvm r1, 3") == [
        encode(Op.MVM, b=1, imm16=flags(b, a)) for b, a in
        [(0, Act.NONE), (0, Act.NONE), (0, Act.RELU), (1, Act.NONE), (1, Act.RELU)]]
    assert words_of("mvm r1, acc_in|acc_out\nconv r2, bias|acc_out|wshift=11") == [
        encode(Op.MVM, b=1, imm16=flags(0, Act.NONE, 1, 1)),
        encode(Op.CONV, b=2, imm16=flags(1, Act.NONE, 0, 1, 11))]
    word = encode(Op.CONV, b=2, imm16=flags(1, Act.RELU, wshift=5))
    assert canon(disassemble_word(word)) == "conv r2, bias|relu|wshift=5"
    # Bits outside the flags print as an integer.
    bad = 1 << MvmFlags.size | flags(1, Act.TANH)
    assert canon(disassemble_word(encode(Op.MVM, b=1, imm16=bad))) == f"mvm r1, {bad}"


def test_pseudo_instructions():
    lui_bits = FIELDS["imm16"][1]
    for value in (-5, 0xDEADBEEF, -(1 << 31), (1 << 32) - 1, 0, 0x12345):
        raw = value & 0xFFFFFFFF
        assert words_of(f"li32 r3, {value}") == [
            encode(Op.LUI, a=3, imm16=raw >> lui_bits),
            encode(Op.ORI, a=3, b=3, imm16=raw & ((1 << lui_bits) - 1))]
    assert words_of("nop\nj 0") == [encode(Op.NOP), encode(Op.JAL, a=0, imm21=-1)]
    assert words_of("mv r4, r5") == [encode(Op.ADDI, a=4, b=5, imm16=0)]


def test_syntax_details():
    program = assemble("""
        .EQU  N, -0x10          ; constants, hex
        .equ  M, N
    a:  b:  addi r1, r2, K      # K is defined below: fine for instructions
        lw   r1, (r2)
        LW   R1, 0(R2)
        beq  r0, r0, .+2
        beq  r0, r0, 0
        .word 0xffffffff
        .word -1
        .equ  K, 0b101
    end:
    """, "x.s")
    assert program.words == [
        encode(Op.ADDI, a=1, b=2, imm16=5), encode(Op.LW, a=1, b=2), encode(Op.LW, a=1, b=2),
        encode(Op.BEQ, imm16=2), encode(Op.BEQ, imm16=-4), 0xFFFFFFFF, 0xFFFFFFFF]
    assert program.labels == {"a": 0, "b": 0, "end": 7}
    assert program.lines == [4, 5, 6, 7, 8, 9, 10]
    assert words_of(".equ N, -3\naddi r1, r1, N") == [encode(Op.ADDI, a=1, b=1, imm16=-3)]


def test_to_bytes():
    program = assemble(".word 0x11223344\n.word 0xa0b0c0d0")
    assert isinstance(program, Program)
    assert program.to_bytes() == bytes([0x44, 0x33, 0x22, 0x11, 0xD0, 0xC0, 0xB0, 0xA0])


# -- round trips -----------------------------------------------------------------------------

PROGRAM = """
# sum r2 = 1 + 2 + ... + N, then call a function and spawn a task
        .equ  N, 10
start:  li    r1, N
        li    r2, 0
        li32  r3, -123456789
        li32  r4, 0xFFFFFFFF
        li32  r5, 0x80000000
loop:   add   r2, r2, r1
        addi  r1, r1, -1
        bne   r1, r0, loop        ; backward
        beq   r2, r0, done        ; forward
        jal   r31, func
        savepc io, r0, task
        wait
        j     done
func:   sw    r2, 4(r0)
        lw    r6, 4(r0)
        jalr  r0, r31, 0
task:   ldc   r2, 0
        dload nbin, r2
        end
done:   halt
"""


def test_program_round_trip():
    program = assemble(PROGRAM, "prog.s")
    assert program.labels == {"start": 0, "loop": 8, "func": 16, "task": 19, "done": 22}
    assert decode(program.words[2])["imm16"] == 0xF8A4        # -123456789 >> 16 & 0xffff
    assert decode(program.words[3])["imm16"] == 0x32EB        # -123456789 & 0xffff
    for labels in (None, program.labels):
        text = disassemble(program.words, labels)
        assert ".word" not in text
        assert assemble(text).words == program.words
    named = disassemble(program.words, program.labels)
    assert "bne     r1, r0, loop" in named and "savepc  io, r0, task" in named
    generated = disassemble(program.words)
    assert "L8:" in generated and "bne     r1, r0, L8" in generated


def test_disassemble_labels():
    words = words_of("top: nop\nbeq r0, r0, bottom\nj top\nbottom:")
    assert disassemble(words) == ("L0:\n    nop\n    beq     r0, r0, L3\n    jal     r0, L0\n"
                                  "L3:\n")
    assert disassemble(words, {"top": 0, "bottom": 3, "far": 99}).startswith("top:\n")
    assert disassemble([]) == ""


def _fields(op):
    """A strategy for the fields of ``op`` that its format uses, every other field zero."""
    reg = st.integers(0, NUM_REGS - 1)

    def imm(field, signed):
        bits = FIELDS[field][1]
        return (st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed
                else st.integers(0, (1 << bits) - 1))
    s16, u16, s21 = imm("imm16", True), imm("imm16", False), imm("imm21", True)
    if op in SHIFTS:
        u16 = st.integers(0, 31)
    return st.fixed_dictionaries({
        Fmt.NONE: {},
        Fmt.R: dict(a=reg, b=reg, c=reg),
        Fmt.I: dict(a=reg, b=reg, imm16=s16),
        Fmt.IU: dict(a=reg, b=reg, imm16=u16),
        Fmt.LI: dict(a=reg, imm21=s21),
        Fmt.LUI: dict(a=reg, imm16=u16),
        Fmt.LOAD: dict(a=reg, b=reg, imm16=s16),
        Fmt.STORE: dict(a=reg, b=reg, imm16=s16),
        Fmt.BRANCH: dict(a=reg, b=reg, imm16=s16),
        Fmt.JAL: dict(a=reg, imm21=s21),
        Fmt.CTX: dict(a=reg, imm16=u16),
        Fmt.LDC: dict(a=reg, imm16=u16),
        Fmt.TASK: dict(a=st.sampled_from([u.value for u in MODULE_UNITS]), b=reg, imm16=u16),
        Fmt.OVERLAY: dict(a=reg, b=reg, imm16=u16),
        Fmt.DEST: dict(imm16=u16),
        Fmt.TMPL: dict(imm16=imm("tmpl", False)),
        Fmt.COUNT: dict(imm16=u16),
        Fmt.TPLCTX: dict(a=reg, off=imm("off", False),
                         c=st.sampled_from([o.value for o in Operand])),
        Fmt.SPAWN: dict(tmpl=imm("tmpl", False), a=reg, b=reg, c=reg, d=reg),
        Fmt.DMA: dict(a=st.sampled_from([b.value for b in Buf]), b=reg),
        Fmt.MVM: dict(b=reg, imm16=u16),
        Fmt.VEC: dict(b=reg, imm16=u16),
    }[OPS[op][0]])


instructions = st.sampled_from(list(OPS)).flatmap(
    lambda op: _fields(op).map(lambda fields: encode(op, **fields)))


@settings(max_examples=150, deadline=None)
@given(st.lists(instructions, max_size=12))
def test_valid_words_round_trip(words):
    text = disassemble(words)
    assert ".word" not in text
    assert assemble(text).words == words
    for pc, word in enumerate(words):
        assert assemble(disassemble_word(word)).words == [word]
        prefix = "nop\n" * pc
        assert assemble(prefix + disassemble_word(word, pc)).words[pc] == word


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, (1 << 32) - 1), max_size=12))
def test_any_words_round_trip(words):
    assert assemble(disassemble(words)).words == words


def test_non_instructions_print_as_word():
    opcodes = {op.value for op in Op}
    invalid = next(n for n in range(1 << FIELDS["op"][1]) if n not in opcodes)
    raw = invalid << FIELDS["op"][0] | 5
    c_lsb = FIELDS["c"][0]
    for word in [raw, encode(Op.ILLEGAL),
                 encode(Op.HALT) | 1,                          # unused imm bits
                 encode(Op.ADD, a=1, b=2, c=3) | 1 << (c_lsb - 1),
                 encode(Op.DLOAD, a=1, b=2, imm16=4),
                 encode(Op.SLLI, a=1, b=1, imm16=32),           # shift beyond 31
                 encode(Op.SAVEPC, a=Unit.CTRL.value),         # not a module unit
                 encode(Op.DSTORE, a=3, b=1)]:                 # no such buffer
        assert disassemble_word(word) == f".word 0x{word:08x}"
        assert assemble(disassemble([word])).words == [word]
    assert disassemble(words_of(f".word {raw}")) == f"    .word 0x{raw:08x}\n"


def test_targets_outside_the_program():
    words = [encode(Op.BEQ, imm16=-3), encode(Op.JAL, imm21=50), encode(Op.SAVEPC, imm16=9)]
    assert [canon(line) for line in disassemble(words).splitlines()] == [
        "beq r0, r0, .-3", "jal r0, 51", "savepc io, r0, 9"]
    assert assemble(disassemble(words)).words == words


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("source, line, parts", [
    ("nop\nadd r1, r2\n", 2, ["'add' takes 3 operands (rd, ra, rb), got 2"]),
    ("halt r1", 1, ["'halt' takes no operands, got 1"]),
    ("j", 1, ["'j' takes 1 operand (target), got 0"]),
    ("\n\n\naddi r1, x5, 3", 4,
     ["expected a register r0..r31 as operand 2 of 'addi', got 'x5'"]),
    ("add r1, r2, r32", 1, ["expected a register r0..r31 as operand 3 of 'add', got 'r32'"]),
    ("ad r1", 1, ["unknown mnemonic 'ad'"]),
    ("addi r1, r2, 70000", 1, ["immediate 70000 does not fit simm16 (-32768..32767)"]),
    ("ori r1, r2, -1", 1, ["immediate -1 does not fit uimm16 (0..65535)"]),
    ("li r1, 1048576", 1, ["does not fit simm21 (-1048576..1048575)"]),
    ("slli r1, r1, 32", 1, ["shift amount 32 does not fit shamt (0..31)"]),
    ("addi r1, r2, foo", 1, ["expected an integer (simm16) as operand 3 of 'addi', got 'foo'"]),
    ("nop\nj loop", 2, ["undefined label 'loop'"]),
    ("jal r1, 1 2", 1, ["expected a label or pc as operand 2 of 'jal', got '1 2'"]),
    ("loop: nop\nnop\nloop: nop", 3, ["duplicate label 'loop' (first defined at line 1)"]),
    (".equ N, 1\nN: nop", 2, ["duplicate label 'N' (first defined at line 1)"]),
    ("1x: nop", 1, ["invalid label name '1x'"]),
    (".equ 1x, 2", 1, ["invalid constant name '1x'"]),
    (".equ A, B", 1, ["expected an integer as operand 2 of '.equ', got 'B'"]),
    (".equ A", 1, ["'.equ' takes 2 operands (name, value), got 1"]),
    ("savepc xyz, r0, 0", 1, ["expected a unit io/pfu/store", "got 'xyz'"]),
    ("savepc ctrl, r0, 0", 1, ["expected a unit io/pfu/store", "got 'ctrl'"]),
    ("savepc io, r0, 70000", 1, ["target pc 70000 does not fit uimm16 (0..65535)"]),
    ("dload foo, r1", 1, ["expected a buffer nbin/sb/nbout as operand 1 of 'dload'"]),
    ("mvm r1, bias|softmax", 1, ["expected flags (bias|none|relu|sigmoid|tanh|acc_in|acc_out|"
                                 "wshift=N or an integer)",
                                 "got 'softmax'"]),
    ("mvm r1, relu|none", 1, ["flags give act twice"]),
    ("mvm r1, wshift=16", 1, ["wshift=16 does not fit 4 bits"]),
    ("beq r1, r2, 40000", 1, ["offset 40000 does not fit simm16"]),
    ("lw r1, 4[r2]", 1, ["expected an address simm16(ra) as operand 2 of 'lw', got '4[r2]'"]),
    ("lw r1, x(r2)", 1, ["expected an integer (simm16) as operand 2 of 'lw', got 'x'"]),
    ("li32 r1, 0x100000000", 1, ["value 4294967296 does not fit 32 bits"]),
    (".word -2147483649", 1, ["value -2147483649 does not fit 32 bits"]),
    ("tpl 64", 1, ["template 64 does not fit a template number (0..63)"]),
    ("spawn 64, r1, r2, r3, r4", 1, ["template 64 does not fit a template number (0..63)"]),
    ("spawn 1, r1, r2, r3", 1, ["'spawn' takes 5 operands (template, ra, rb, rc, rd), got 4"]),
    ("tplctx r1, 2048, a", 1, ["does not fit uoff (0..2047)"]),
    ("tplctx r1, 0, e", 1, ["expected an operand none/a/b/c/d as operand 3 of 'tplctx'"]),
])
def test_errors(source, line, parts):
    with pytest.raises(AsmError) as info:
        assemble(source, "prog.s")
    err = info.value
    assert (err.filename, err.line) == ("prog.s", line)
    assert str(err) == f"prog.s:{line}: {err.message}"
    for part in parts:
        assert part in err.message
