"""Whole networks on the RTL: an ONNX model (a file, or one of the paper's four networks from
:mod:`dypipe.sw.model_zoo`) imported, compiled in each mode, run, checked bit-exact against the
golden model layer by layer, and compared with the float model.

:class:`NetworkJob` is what ``dypipe run FILE.onnx`` / ``dypipe run resnet18`` and
``dypipe bench nets`` share.
"""

import pathlib

import numpy as np

from .sw import model_zoo
from .sw.network import compile_graph, output_of
from .sw.onnx_import import float_reference, import_onnx, output_values, quantize_input

__all__ = ["NetworkJob", "is_model_path", "float_error"]


def is_model_path(name):
    """Whether a ``dypipe run`` workload argument names an ONNX file."""
    return name.lower().endswith(".onnx") or pathlib.Path(name).is_file()


def float_error(y, ref):
    """How far the machine's dequantized output ``y`` is from the float model's ``ref``."""
    y, ref = np.asarray(y, np.float64).reshape(-1), np.asarray(ref, np.float64).reshape(-1)
    diff = y - ref
    norm = float(np.sqrt(np.mean(ref ** 2))) or 1.0
    out = {"max_abs_error": round(float(np.abs(diff).max()), 5),
           "rms_error": round(float(np.sqrt(np.mean(diff ** 2))), 5),
           "relative_rms_error": round(float(np.sqrt(np.mean(diff ** 2))) / norm, 5),
           "float_max_abs": round(float(np.abs(ref).max()), 5)}
    if ref.size > 1:
        out["top1_agrees"] = bool(y.argmax() == ref.argmax())
    return out


class NetworkJob:
    """One network with one input, ready to compile in any mode.

    ``model`` is a path, an ``onnx.ModelProto``, or a name from :data:`model_zoo.NETWORKS`
    (the paper's variant on the ``paper`` configuration, the small twin elsewhere). The input
    is ``input`` (a float array of the ONNX input's shape, or a ``.npy`` path) or else uniform
    in [-1, 1) from ``seed``."""

    def __init__(self, config, model, *, seed=0, input=None, name=None):
        self.config = config
        if isinstance(model, str) and model in model_zoo.NETWORKS:
            name = name or model
            model = model_zoo.build(model, "paper" if config.name == "paper" else "small",
                                    seed=seed)
        elif isinstance(model, (str, pathlib.Path)):
            name = name or pathlib.Path(model).stem
        self.imported = import_onnx(model, config, name=name)
        self.name = name or self.imported.graph.name
        if input is None:
            x = np.random.default_rng(seed).uniform(-1, 1, self.imported.input_shape)
        else:
            x = np.load(input) if isinstance(input, (str, pathlib.Path)) else input
        self.x_float = np.asarray(x, dtype=np.float64)
        self.x = quantize_input(self.imported, self.x_float, config)
        self._reference = None

    def workload(self, mode):
        return compile_graph(self.config, self.imported.graph, self.x, mode, name=self.name,
                             meta={"quantization": self.imported.quantization})

    @property
    def reference(self):
        """The float model's output (computed once)."""
        if self._reference is None:
            self._reference = float_reference(self.imported, self.x_float)
        return self._reference

    def compare(self, workload, result):
        """:func:`float_error` of a run of ``workload``."""
        y = output_values(self.imported, output_of(workload, result.outputs), self.config)
        return float_error(y, self.reference)
