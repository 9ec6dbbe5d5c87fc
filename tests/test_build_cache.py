"""The Verilog cache key covers everything the RTL is generated from: every project module
that importing the RTL loads (the shared layer: isa, pwl, config), not a hand-kept list."""

import json
import pathlib
import subprocess
import sys

from dypipe.tb.runner import rtl_sources, _hardware_hash
from dypipe.config import PRESETS


def test_cache_key_covers_every_module_the_rtl_imports():
    code = ("import sys, json, dypipe.rtl.top; "
            "print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items() "
            "if n.startswith('dypipe.') and getattr(m, '__file__', None))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
    sources = {p.resolve() for p in rtl_sources()}
    missing = [f for f in loaded
               if not f.endswith("__init__.py") and pathlib.Path(f).resolve() not in sources]
    assert not missing, f"the cache key misses {missing}"
    names = {p.name for p in sources}
    assert {"isa.py", "pwl.py", "config.py"} <= names


def test_cache_key_changes_with_the_activation_table(monkeypatch):
    """An edit of sw/pwl.py (the sigmoid / tanh table the RTL bakes in) rebuilds."""
    pwl = next(p for p in rtl_sources() if p.name == "pwl.py")
    before = _hardware_hash(PRESETS["small"], "verilog")
    original = pathlib.Path.read_bytes

    def edited(path):
        data = original(path)
        return data + b"\n# edited\n" if path == pwl else data
    monkeypatch.setattr(pathlib.Path, "read_bytes", edited)
    assert _hardware_hash(PRESETS["small"], "verilog") != before


def test_cache_key_differs_between_backends():
    """The simulation Verilog (with Verilog twins) and the synthesis Verilog are two files."""
    assert _hardware_hash(PRESETS["small"], "verilog") != _hardware_hash(PRESETS["small"],
                                                                         "amaranth")
