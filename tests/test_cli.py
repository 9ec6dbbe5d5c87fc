"""The command line's assembler subcommands and its error handling (no simulation)."""

import pytest

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


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as e:          # argparse rejects an option before any work
        return e.code


@pytest.mark.parametrize("argv,message", [
    (["run", "fc", "--max-cycles", "0"], "argument --max-cycles: must be a positive number"),
    (["run", "fc", "--max-cycles", "-5"], "argument --max-cycles: must be a positive number"),
    (["run", "fc", "--seed", "-1"], "argument --seed: must be a non-negative integer"),
    (["bench", "ops", "--seed", "one"], "argument --seed: must be a non-negative integer"),
    (["run", "treelstm", "--size", "0"], "size must be a positive integer, not '0'"),
    (["run", "conv", "--size", "3x3x4x4x5x1x0"], "a 5x5 kernel does not fit a 3x3 input"),
    (["run", "fc", "--set", "pe_rows=3"], "--set pe_rows=3: pe_rows must be a power of two"),
    (["verilog", "-o", "x.v", "--set", "bogus=1"], "expected FIELD=VALUE with FIELD one of"),
    (["bench", "ops", "--set", "sb_bytes=lots"], "'lots' is not an integer"),
    (["sweep", "fc", "--set-range", "pe_rows"], "expected FIELD=V1,V2,..."),
    (["sweep", "fc", "--set-range", "pe_rows=3,4"], "pe_rows must be a power of two"),
    (["sweep", "fc", "--set-range", "pe_rows=4", "--set-range", "pe_rows=8"], "swept twice"),
    (["sweep", "fc"], "the following arguments are required: --set-range"),
    (["run", "fc", "--stall-percent", "10"], "--stall-percent and --max-extra-latency need "
                                             "--random-timing SEED"),
    (["run", "fc", "--random-timing", "1", "--stall-percent", "95"],
     "argument --stall-percent: must be an integer in 0..90"),
    (["run", "fc", "--random-timing", "-3"], "argument --random-timing: must be a seed"),
    (["fuzz", "-n", "0"], "argument -n: must be a positive number of graphs"),
])
def test_bad_options_name_themselves(argv, message, capsys):
    assert _exit_code(argv) == 2
    assert message in capsys.readouterr().err


def test_bench_sim_rejects_bad_arguments(capsys):
    from dypipe.simspeed import main as simspeed
    for argv in (["--against", "HEAD", "--config", "huge"], ["--against", "HEAD", "--runs", "0"]):
        with pytest.raises(SystemExit) as e:
            simspeed(argv)
        assert e.value.code == 2
        assert "--config takes small, paper" in capsys.readouterr().err
