"""A compiler wrapper that keeps the objects every Verilator build compiles the same way.

Every build of a design compiles, besides its own model, the same run-time library (Verilator's
``verilated*.cpp``, cocotb's ``verilator.cpp``, the DPI-C DRAM model): about 18 s of CPU,
a third of a ``small`` build. Verilator's makefile runs each compile through ``$(OBJCACHE)``
(the hook meant for ccache); :func:`toolchain.build <dypipe.tb.toolchain.build>` sets it to this
script, which serves such an object from a cache directory when one was compiled before by the
same command line with the same compiler and every file it read unchanged.

What is cached: a compile of a source outside the build directory (an absolute path) that
reads no header of the build directory, and nothing else: the model's own files are new for
every design and go straight to the compiler, and cocotb's ``verilator.cpp`` includes the
model's header, so it is compiled again too.
An entry is found by a hash of the command line, the source's contents and the compiler's
identity (its resolved path, size and modification time); it keeps the object, the ``-MMD``
dependency file and the size and modification time of every header that file lists, and is
used only if all of them still match (as ccache's "direct mode" does). Entries are written to a
temporary name and renamed, so two builds may fill the cache at once.

Usage (what the makefile runs): ``python objcache.py CACHE_DIR COMPILER ARGS...``. Standard
library only: it starts once per compiled file.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys


def _compiler_identity(compiler):
    path = shutil.which(compiler) or compiler
    real = os.path.realpath(path)
    st = os.stat(real)
    return [real, st.st_size, st.st_mtime_ns]


def _parse(args):
    """``(source, output)`` of a single-source ``-c`` compile, or ``None``."""
    if "-c" not in args:
        return None
    sources = [a for a in args if a.endswith((".cpp", ".cc", ".c")) and not a.startswith("-")]
    if len(sources) != 1:
        return None
    output = args[args.index("-o") + 1] if "-o" in args[:-1] else None
    source = sources[0]
    if output is None:
        output = os.path.splitext(os.path.basename(source))[0] + ".o"
    return source, output


def _dependencies(depfile):
    """The files a ``-MMD`` dependency file lists after its target."""
    text = open(depfile).read().replace("\\\n", " ")
    _, _, deps = text.partition(":")
    return deps.split()


def _stamp(paths):
    stamps = []
    for path in paths:
        st = os.stat(path)
        stamps.append([path, st.st_size, st.st_mtime_ns])
    return stamps


def _key(args, source):
    h = hashlib.sha256(json.dumps([args, _compiler_identity(args[0])]).encode())
    with open(source, "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:32]


def _fetch(entry, output, depfile):
    """Copy a cached object into place if its entry is whole and its headers unchanged."""
    try:
        with open(os.path.join(entry, "stamps.json")) as f:
            stamps = json.load(f)
        if _stamp([path for path, _, _ in stamps]) != stamps:
            return False
        shutil.copyfile(os.path.join(entry, "object.o"), output)
        shutil.copyfile(os.path.join(entry, "object.d"), depfile)
        return True
    except (OSError, ValueError):
        return False


def _store(entry, output, depfile):
    """Keep a freshly compiled object in place of a stale entry (best effort: a cache that
    cannot be written is skipped)."""
    tmp = f"{entry}.tmp{os.getpid()}"
    dependencies = _dependencies(depfile)
    if not all(os.path.isabs(path) for path in dependencies):
        return          # it read a header of the build directory (cocotb's main reads Vtop.h)
    try:
        os.makedirs(tmp, exist_ok=True)
        shutil.copyfile(output, os.path.join(tmp, "object.o"))
        shutil.copyfile(depfile, os.path.join(tmp, "object.d"))
        with open(os.path.join(tmp, "stamps.json"), "w") as f:
            json.dump(_stamp(dependencies), f)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    cache, args = argv[0], argv[1:]
    parsed = _parse(args)
    if parsed is None or not os.path.isabs(parsed[0]) or "-MMD" not in args:
        os.execvp(args[0], args)
    source, output = parsed
    depfile = os.path.splitext(output)[0] + ".d"
    entry = os.path.join(cache, _key(args, source))
    if os.path.isdir(entry) and _fetch(entry, output, depfile):
        return 0
    code = subprocess.call(args)
    if code == 0 and os.path.exists(depfile):
        os.makedirs(cache, exist_ok=True)
        _store(entry, output, depfile)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
