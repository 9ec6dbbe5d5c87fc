"""The object cache Verilator's makefile compiles through (``tb/objcache.py``): a compile is
served from the cache only when the command line, the source, the compiler and every header
it read are the same; anything else reaches the compiler."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from dypipe.tb import objcache, toolchain

#: A stand-in compiler: writes the object (the source's text and the flags) and an -MMD
#: dependency file naming the header, and counts its calls.
FAKE_COMPILER = textwrap.dedent("""\
    #!{python}
    import pathlib, sys
    args = sys.argv[1:]
    out = args[args.index("-o") + 1]
    src = [a for a in args if a.endswith(".cpp")][0]
    header = pathlib.Path(src).with_suffix(".h")
    pathlib.Path(out).write_text(pathlib.Path(src).read_text() + " ".join(args))
    pathlib.Path(out).with_suffix(".d").write_text(f"{{out}}: {{src}} \\\\\\n {{header}}\\n")
    calls = pathlib.Path(__file__).with_suffix(".calls")
    calls.write_text(str(int(calls.read_text() if calls.exists() else 0) + 1))
""")


@pytest.fixture
def setup(tmp_path):
    compiler = tmp_path / "fakecc"
    compiler.write_text(FAKE_COMPILER.format(python=sys.executable))
    compiler.chmod(0o755)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "rt.cpp").write_text("int rt;")
    (lib / "rt.h").write_text("// header")
    return tmp_path, compiler, lib


def compile_in(directory, compiler, cache, source, *flags):
    """Run the wrapper as the makefile does, in ``directory``; returns the object's text."""
    directory.mkdir(exist_ok=True)
    cmd = [sys.executable, str(toolchain.OBJCACHE_SCRIPT), str(cache), str(compiler), "-MMD",
           *flags, "-c", "-o", "rt.o", str(source)]
    subprocess.run(cmd, cwd=directory, check=True)
    return (directory / "rt.o").read_text()


def calls(compiler):
    return int(compiler.with_suffix(".calls").read_text())


def test_a_second_build_gets_the_object_from_the_cache(setup):
    tmp, cc, lib = setup
    cache = tmp / "cache"
    first = compile_in(tmp / "a", cc, cache, lib / "rt.cpp", "-O2")
    second = compile_in(tmp / "b", cc, cache, lib / "rt.cpp", "-O2")
    assert calls(cc) == 1 and first == second
    assert (tmp / "b" / "rt.d").read_text() == (tmp / "a" / "rt.d").read_text()


def test_anything_changed_compiles_again(setup):
    tmp, cc, lib = setup
    cache = tmp / "cache"
    compile_in(tmp / "a", cc, cache, lib / "rt.cpp", "-O2")
    compile_in(tmp / "b", cc, cache, lib / "rt.cpp", "-O3")          # other flags
    assert calls(cc) == 2
    (lib / "rt.cpp").write_text("int rt2;")                           # the source
    assert compile_in(tmp / "c", cc, cache, lib / "rt.cpp", "-O2").startswith("int rt2;")
    assert calls(cc) == 3
    (lib / "rt.h").write_text("// another header")                    # a header it read
    os.utime(lib / "rt.h", ns=(1, 1))
    compile_in(tmp / "d", cc, cache, lib / "rt.cpp", "-O2")
    assert calls(cc) == 4
    compile_in(tmp / "e", cc, cache, lib / "rt.cpp", "-O2")           # and now it is kept
    assert calls(cc) == 4


def test_sources_of_the_build_directory_are_never_cached(setup):
    tmp, cc, lib = setup
    cache = tmp / "cache"
    for run in ("a", "b"):
        (tmp / run).mkdir()
        (tmp / run / "rt.cpp").write_text("int model;")
        compile_in(tmp / run, cc, cache, "rt.cpp", "-O2")
    assert calls(cc) == 2 and not cache.exists()


def test_a_failing_compile_is_not_kept(setup):
    tmp, cc, lib = setup
    cache = tmp / "cache"
    cmd = [str(cc), "-MMD", "-c", "-o", "rt.o", str(lib / "missing.cpp")]
    (tmp / "a").mkdir()
    proc = subprocess.run([sys.executable, str(toolchain.OBJCACHE_SCRIPT), str(cache), *cmd],
                          cwd=tmp / "a")
    assert proc.returncode != 0
    assert not cache.exists() or not any(cache.iterdir())


def test_builds_share_the_run_time_library():
    """Every build compiles Verilator's run-time objects through the cache; the warm-up design
    (built beside a new design's Verilog generation) fills it for all of them, but not with
    what depends on a design."""
    from dypipe.tb import runner
    cpp = [runner.RTL_DIR / "verilog" / "dypipe_dram.cpp"]
    toolchain.warm_object_cache(runner.OBJECT_CACHE, cpp=cpp, timing=True)()
    sources = set()
    for entry in runner.OBJECT_CACHE.iterdir():
        if (entry / "object.d").exists():
            sources.add(pathlib.Path(objcache._dependencies(entry / "object.d")[0]).name)
    assert {"verilated.cpp", "verilated_vpi.cpp", "verilated_timing.cpp", "verilated_dpi.cpp",
            "dypipe_dram.cpp"} <= sources
    assert "verilator.cpp" not in sources       # cocotb's main includes the design's Vtop.h
    warm = runner.OBJECT_CACHE / "warm-fast-timing" / "fast"
    compiles = [line for line in (warm / "build.log").read_text().splitlines() if " -c " in line]
    assert compiles and all("objcache.py" in line for line in compiles)
    # The warm-up compiles the run-time library only: no model, no main, no executable.
    assert not any(warm.glob("Vtop__ALL*")) and not (warm / "verilator.o").exists()
    assert not (warm / toolchain.WARM_TOP).exists()
