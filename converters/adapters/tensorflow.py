"""The TensorFlow adapter: SavedModel directories, Keras ``.keras``/``.h5`` and frozen ``.pb`` in;
SavedModel directories out.

tensorflow is imported lazily, inside the methods, so that listing adapters never imports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: each test's model is traced by the backend into a `tf.function` (the SavedModel's
  `serving_default` signature function) and called in memory by TensorFlow
  (`TensorFlowFramework.run_ir`); `tf.saved_model.save` is not repeated per test.
- **Layout**: Conv, ConvTranspose and pooling run channels-last (TF's CPU kernels take NHWC
  only); the backend transposes at the boundaries of channels-last regions only.
"""


class TensorFlowFramework(Framework):
    """TensorFlow: reads SavedModels, Keras files and frozen graphs; writes SavedModels."""

    name: ClassVar[str] = "tensorflow"
    extra: ClassVar[str | None] = "tensorflow"
    requires: ClassVar[tuple[str, ...]] = ("tensorflow",)
    reads: ClassVar[tuple[str, ...]] = (".keras", ".h5", ".hdf5", ".pb", ".savedmodel")
    writes: ClassVar[tuple[str, ...]] = (".savedmodel",)
    writes_directory: ClassVar[bool] = True
    conformance_note: ClassVar[str] = _CONFORMANCE_NOTE

    def matches(self, path: Path, *, for_writing: bool) -> bool:
        from unframe.backends.tensorflow.native import is_saved_model_dir

        if for_writing:
            return path.name.lower().endswith(self.writes) or is_saved_model_dir(path)
        if path.is_dir():
            return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()
        name = path.name.lower()
        if name == "saved_model.pb":
            return True
        # A frozen GraphDef is a .pb too, as Caffe2's nets are: read it only when asked for
        # (--from tensorflow), never by its suffix alone.
        return name.endswith((".keras", ".h5", ".hdf5"))

    def is_own_output(self, path: Path) -> bool:
        from unframe.backends.tensorflow.native import is_saved_model_dir

        return is_saved_model_dir(path)

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        self.ensure_installed()
        # The frontend (a hand-off to tf2onnx) is built beside this adapter.
        from unframe.frontends.tensorflow import load_tensorflow

        return load_tensorflow(path, options)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        self.ensure_installed()
        from unframe.backends.tensorflow import save_saved_model

        weights = str(options.extra.get("tensorflow_weights", "variables"))
        built = save_saved_model(model, path, weights=weights)
        if built.transposes:
            warnings.warn(
                f"tensorflow: the layout pass added {built.transposes} Transpose(s) at the "
                "boundaries of channels-last (NHWC) regions",
                stacklevel=2,
            )

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.ensure_installed()
        from unframe.backends.tensorflow.native import run_saved_model

        if path.is_file() and path.name == "saved_model.pb":
            path = path.parent
        return run_saved_model(path, inputs)

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Traces the signature function in memory and calls it (no SavedModel written)."""
        self.ensure_installed()
        from unframe.backends.tensorflow import run_built, to_tensorflow

        return run_built(to_tensorflow(model), inputs)

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.tensorflow.driver import export_registry

        return export_registry()

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        from unframe.backends.tensorflow.driver import unsupported

        return unsupported(model)
