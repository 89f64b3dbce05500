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
from unframe.shared_ir.errors import BadInputError, UnsupportedError, UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: each test's model is traced by the backend into a `tf.function` (the SavedModel's
  `serving_default` signature function) and called in memory by TensorFlow
  (`TensorFlowFramework.run_ir`); `tf.saved_model.save` is not repeated per test.
- **Layout**: Conv, ConvTranspose and pooling run channels-last (TF's CPU kernels take NHWC
  only); the backend transposes at the boundaries of channels-last regions only.
"""


#: Where a backend with a layout pass notes on the converted IR (``metadata_props``) how many
#: Transposes it added; ``unframe convert --json`` reports it as ``transposes_added``.
TRANSPOSES_ADDED_KEY = "unframe.transposes_added"
LAYOUTS = ("onnx", "nhwc")


def layout_option(options: ConvertOptions) -> str:
    """``extra["layout"]`` checked: "onnx" (default) or "nhwc"."""
    layout = str(options.extra.get("layout") or "onnx").lower()
    if layout not in LAYOUTS:
        raise BadInputError(
            f"layout {layout!r} is not one of {', '.join(LAYOUTS)}", hint="--layout onnx|nhwc"
        )
    return layout


def note_transposes(model: ir.Model, built: Any, layout: str) -> None:
    """Says (warnings) and notes on ``model`` how many Transposes the layout pass added and, with
    ``--layout nhwc``, which inputs and outputs the signature takes channels-last."""
    transposes = int(built.transposes)
    model.metadata_props[TRANSPOSES_ADDED_KEY] = str(transposes)
    if layout == "nhwc":
        inputs = ", ".join(built.nhwc_inputs) or "none"
        outputs = ", ".join(built.nhwc_outputs) or "none"
        warnings.warn(
            f"tensorflow: --layout nhwc: channels-last (NHWC) inputs: {inputs}; outputs: "
            f"{outputs}; the others keep the ONNX graph's layout",
            stacklevel=3,
        )
    if transposes:
        warnings.warn(
            f"tensorflow: the layout pass added {transposes} Transpose(s) at the "
            "boundaries of channels-last (NHWC) regions",
            stacklevel=3,
        )


#: The most weight bytes written as graph constants: a SavedModel's graph is one protobuf
#: (2 GiB at most), which also holds the ops; variables live in the checkpoint beside it.
GRAPH_CONSTANTS_LIMIT = (2 << 30) - (64 << 20)


def _refuse_constants_over_the_graph_limit(model: ir.Model) -> None:
    from unframe.shared_ir.io import initializer_bytes

    total = initializer_bytes(model)
    if total > GRAPH_CONSTANTS_LIMIT:
        raise UnsupportedError(
            f"the weights ({total / 2**30:.2f} GiB) cannot be graph constants: a SavedModel's "
            "graph is one protobuf of at most 2 GB",
            framework="tensorflow",
            hint="leave tensorflow_weights='constants' out: weights are tf.Variables by default, "
            "saved in the variables/ checkpoint, which has no such limit",
        )


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

    def __init__(self) -> None:
        #: Frozen GraphDefs read in this process -> the tensors taken as their outputs (the
        #: runtime fetches those, ``--output-node`` included).
        self._graph_outputs: dict[Path, list[str]] = {}

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        self.ensure_installed()
        # The frontend (a hand-off to tf2onnx) is built beside this adapter.
        from unframe.frontends.tensorflow import load_tensorflow
        from unframe.frontends.tensorflow.loading import GRAPH_OUTPUTS_KEY

        model = load_tensorflow(path, options)
        outputs = model.metadata_props.get(GRAPH_OUTPUTS_KEY)
        if outputs:
            self._graph_outputs[path.resolve()] = outputs.split(",")
        return model

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        self.ensure_installed()
        from unframe.backends.tensorflow import save_saved_model

        weights = str(options.extra.get("tensorflow_weights", "variables"))
        if weights == "constants":
            _refuse_constants_over_the_graph_limit(model)
        layout = layout_option(options)
        built = save_saved_model(model, path, weights=weights, layout=layout)
        note_transposes(model, built, layout)

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.ensure_installed()
        from unframe.backends.tensorflow.native import run_saved_model

        if path.is_file() and path.name.lower().endswith((".keras", ".h5", ".hdf5")):
            from unframe.frontends.tensorflow.keras_files import run_keras_file

            return run_keras_file(path, inputs)
        if path.is_file() and path.name != "saved_model.pb" and path.suffix.lower() == ".pb":
            from unframe.frontends.tensorflow.loading import run_graph_def

            return run_graph_def(path, inputs, self._graph_outputs.get(path.resolve()))
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
