"""The command line's assembler subcommands and its error handling (no simulation)."""

from dypipe.cli import main

PROGRAM = "start: li r2, 5\nloop: addi r2, r2, -1\n  bne r2, r0, loop\n  halt\n"


def test_asm_then_disasm_round_trip(tmp_path, capsys):
    src = tmp_path / "p.s"
    src.write_text(PROGRAM)
    assert main(["asm", str(src)]) == 0
    listing = capsys.readouterr().out
    assert len(listing.splitlines()) == 4
    hexfile = tmp_path / "p.hex"
    hexfile.write_text(listing)
    assert main(["disasm", str(hexfile)]) == 0
    text = capsys.readouterr().out
    again = tmp_path / "again.s"
    again.write_text(text)
    assert main(["asm", str(again)]) == 0
    assert capsys.readouterr().out == listing


def test_asm_error_names_file_and_line(tmp_path, capsys):
    src = tmp_path / "bad.s"
    src.write_text("nop\naddi r2, r3\n")
    assert main(["asm", str(src)]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2:" in err and "takes 3 operands" in err, err


def test_unknown_workload_size_is_an_error(capsys):
    assert main(["run", "fc", "--size", "3"]) == 2
    assert "size must be 2 positive integers" in capsys.readouterr().err
