"""The Caffe2 adapter: NetDef model directories (predict_net, init_net, value_info.json)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry

_PREDICT_FILES = ("predict_net.pb", "predict_net.pbtxt")

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: "caffe2's own runtime" is unframe's numpy NetDef executor
  (`unframe.backends.caffe2.runtime`); Caffe2 itself installs nowhere any more.
- **Parameter inputs**: onnx's node tests feed axes, pads, k, repeats, shapes, windows sizes... as
  graph inputs, where deployed models hold them as initializers. Caffe2 takes these as operator
  arguments, so `Caffe2Framework.run_ir` binds a graph input that only ever feeds such parameter
  slots (directly or through shape arithmetic) to the array it is given, then exports
  (`unframe.backends.caffe2.export.binding`). Without that binding: 105 ops, 1122 tests pass.
- **Element types**: 219 of the failures are tests whose tensors are uint32, uint64, bfloat16,
  float8, int4, string, optional or sequence values, which Caffe2's `TensorProto` cannot hold;
  the backend refuses them by name. Counting those as skipped, 147 ops pass every test; 157 ops pass at least one.
- **Constants**: BlackmanWindow, HammingWindow, HannWindow and MelWeightMatrix have only constant
  inputs once bound; they are exported as their values (GivenTensorFill), not as computations.
- **Decompositions**: ops Caffe2 lacks are built exactly from ones it has (e.g. GatherElements
  from a flat Gather, CumSum as a shifted-add scan, Round half-to-even, Pad in any rank, LayerNorm
  statistics, dilated ConvTranspose kernels, scatter reductions as ordered read-combine-writes).
  Resize uses the coefficients ONNX's own reference computes, as weighted Gathers; dilated
  average/Lp pooling is a grouped Conv of ones. Nothing is approximated: where no exact form
  exists (dilated MaxPool, MaxPool's Indices, tf_crop_and_resize, floating-point Mod,
  training-mode Dropout, random ops) the backend reports the node and stops.
"""


class Caffe2Framework(Framework):
    """Reads and writes Caffe2 models; runs them on unframe's numpy NetDef executor."""

    name = "caffe2"
    extra = "caffe2"
    requires = ("google.protobuf",)
    reads = (".pb", ".pbtxt")
    writes = (".caffe2",)
    writes_directory = True
    conformance_note = _CONFORMANCE_NOTE

    def matches(self, path: Path, *, for_writing: bool) -> bool:
        if for_writing:
            return path.name.lower().endswith(self.writes) or (
                path.is_dir() and any((path / name).is_file() for name in _PREDICT_FILES)
            )
        if path.is_dir():
            return any((path / name).is_file() for name in _PREDICT_FILES)
        # TensorFlow's SavedModel is also a .pb; it sits in a directory of its own.
        return path.name.lower().endswith(self.reads) and path.name != "saved_model.pb"

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        from unframe.backends.caffe2.netdef import read_model
        from unframe.frontends.caffe2 import import_caffe2

        return import_caffe2(read_model(path), options)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        from unframe.backends.caffe2.export import export_model
        from unframe.backends.caffe2.netdef import Caffe2Model, write_model

        nets = export_model(model)
        write_model(Caffe2Model(nets.predict_net, nets.init_net, nets.value_info), path)

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.caffe2.export import export_registry

        return export_registry()

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        # A converter may refuse a node for its attributes or non-constant inputs; a dry run
        # finds those too, so that every problem is reported before anything is written.
        from unframe.backends.caffe2.export.driver import unsupported

        return unsupported(model)

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from unframe.backends.caffe2.netdef import read_model
        from unframe.backends.caffe2.runtime.workspace import run_net

        model = read_model(path)
        return run_net(model.predict_net, model.init_net, inputs)

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Exports ``model`` as it is and runs the nets on the executor with ``inputs``.

        Graph inputs that feed parameters (axes, pads, starts, sizes...) stay inputs: the net
        computes with them at run time, so it is not specialized to the values fed here.
        """
        with tempfile.TemporaryDirectory(prefix="unframe-caffe2-") as tmp:
            path = Path(tmp) / "model.caffe2"
            path.mkdir()
            self.save(model, path, options or ConvertOptions())
            return self.run(path, inputs)

    def runtime_unavailable(self) -> str | None:
        return None if self.is_installed() else "protobuf is not installed"
