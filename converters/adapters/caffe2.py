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


class Caffe2Framework(Framework):
    """Reads and writes Caffe2 models; runs them on unframe's numpy NetDef executor."""

    name = "caffe2"
    extra = "caffe2"
    requires = ("google.protobuf",)
    reads = (".pb", ".pbtxt")
    writes = (".caffe2",)
    writes_directory = True

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
        """Exports ``model`` and runs it on the executor.

        Graph inputs that only feed parameter slots (axes, pads, k, repeats...), which Caffe2
        holds as op arguments, are bound to the arrays given for them first; see
        ``unframe.backends.caffe2.export.binding``.
        """
        from unframe.backends.caffe2.export.binding import bind_parameter_inputs

        model, feeds, _ = bind_parameter_inputs(model, inputs)
        with tempfile.TemporaryDirectory(prefix="unframe-caffe2-") as tmp:
            path = Path(tmp) / "model.caffe2"
            path.mkdir()
            self.save(model, path, options or ConvertOptions())
            return self.run(path, feeds)

    def runtime_unavailable(self) -> str | None:
        return None if self.is_installed() else "protobuf is not installed"
