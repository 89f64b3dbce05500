"""The Caffe2 adapter: NetDef model directories (predict_net, init_net, value_info.json)."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry
from unframe.shared_ir.output import is_regular_file

_PREDICT_FILES = ("predict_net.pb", "predict_net.pbtxt")
#: Every file a Caffe2 model directory holds; ``--force`` replaces no directory holding more.
_MODEL_FILES = frozenset({*_PREDICT_FILES, "init_net.pb", "init_net.pbtxt", "value_info.json"})

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: "caffe2's own runtime" is unframe's numpy NetDef executor
  (`unframe.backends.caffe2.native.executor`); Caffe2 itself installs nowhere any more.
- **Parameter inputs**: onnx's node tests feed axes, pads, starts, k, repeats, shapes, scales and
  window sizes as graph inputs. They stay inputs of the exported net, which computes with the
  values it is fed (nothing is bound to the test's values). Where Caffe2 takes a tensor the net
  passes it on: Reshape's shape, Expand's shape, ConstantFill's `input_as_shape`, Range, Split's
  sizes, Tile's tiles and axis, Slice's starts and ends. Elsewhere it computes the parameter's
  effect (`unframe.backends.caffe2.ops._runtime`): Slice, Pad and CenterCropPad gather
  `Range` positions per axis, clamped as ONNX does; reductions reduce every axis, keep the named
  ones with Where and cut them with a Slice of run-time ends (BooleanMask drops them without
  keepdims); CumSum and CumProd scan along every axis and keep the one named; TopK sorts the
  whole axis and slices k; Resize (nearest, linear, cubic, antialiased) maps output positions
  back from the run-time scales or sizes (keep_aspect_ratio_policy included) and computes its
  coefficients in the net, in double precision as ONNX's reference does.
- **Element types**: 191 of the failures are tests with an input or output element type that
  Caffe2's `TensorProto` cannot hold (uint32, uint64, bfloat16, float8, int4, strings); the
  backend refuses them by name ("graph input" in the reason). Counting those as skipped, 149 ops
  pass every test; 172 ops pass at least one.
- **Kernel types**: the executor refuses an element type that Caffe2 registers no CPU kernel for,
  naming the operator's source file, as Caffe2 would fail: Floor, Ceil, Exp, Log, Abs, Sin, Cos,
  Pow, Max, Min, Clip, MatMul, Conv, pooling, TopK, Relu, Softmax and others are float only;
  Caffe2 has almost no float16 CPU kernels and its CPU Cast refuses float16. The exporter builds
  what it can exactly from ops that exist for the type (double floor, ceil, abs, exp, log, sin,
  cos, max, min, clip and relu from arithmetic, comparisons, casts and Where; narrow integers and
  bools through int32/int64) and refuses the rest by name (double MatMul, Conv and pooling; TopK
  on integers; most float16 ops): about 29 of the failures.
- **Decompositions**: ops Caffe2 lacks are built exactly from ones it has (e.g. GatherElements
  from a flat Gather, CumSum as a shifted-add scan, Round half-to-even, Pad in any rank, LayerNorm
  statistics, dilated ConvTranspose kernels, scatter reductions as ordered read-combine-writes,
  NonZero from BooleanMask, Det up to 3x3 by its Leibniz sum, windows, mel matrices and STFT
  from their defining formulas, Col2Im as a product with a one-hot placement matrix, RNN, GRU and
  LSTM unrolled over their static sequence length). Resize uses the coefficients ONNX's own
  reference computes, as weighted Gathers; dilated average/Lp pooling is a grouped Conv of ones;
  MaxPool with dilations or an Indices output gathers every window into an axis and takes its
  max and first argmax. MatMulInteger, ConvInteger and QLinearConv's accumulation run in float32
  only where every partial sum is an integer below 2**24. Nothing is approximated: where no exact
  form exists (tf_crop_and_resize, floating-point Mod, training-mode Dropout, random ops, Det
  past 3x3, a reverse RNN direction with run-time sequence lengths) the backend reports the node
  and stops.
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
    checks_imported_ir = True

    def matches(self, path: Path, *, for_writing: bool) -> bool:
        if for_writing:
            return path.name.lower().endswith(self.writes) or (
                path.is_dir() and any((path / name).is_file() for name in _PREDICT_FILES)
            )
        if path.is_dir():
            return any((path / name).is_file() for name in _PREDICT_FILES)
        # TensorFlow's SavedModel is also a .pb; it sits in a directory of its own.
        return path.name.lower().endswith(self.reads) and path.name != "saved_model.pb"

    def is_own_output(self, path: Path) -> bool:
        try:
            if path.is_symlink() or not path.is_dir():
                return False
            entries = list(path.iterdir())
            return any(entry.name in _PREDICT_FILES for entry in entries) and all(
                entry.name in _MODEL_FILES and is_regular_file(entry) for entry in entries
            )
        except OSError:
            return False

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        from unframe.backends.caffe2.native import read_model
        from unframe.frontends.caffe2 import import_caffe2

        # ``inspect`` (options.extra["inspect"]) lists a net without weights or shapes too.
        inspecting = bool(options.extra.get("inspect"))
        model = read_model(path, allow_missing_init=inspecting, detach_weights=True)
        return import_caffe2(model, options, structure_only=inspecting)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        from unframe.backends.caffe2.driver import export_model
        from unframe.backends.caffe2.native import Caffe2Model, write_model

        nets = export_model(model, detach_weights=True)
        init_values = nets.init_values
        write_model(
            Caffe2Model(nets.predict_net, nets.init_net, nets.value_info, init_values=init_values),
            path,
        )

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.caffe2.driver import export_registry

        return export_registry()

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        # The registry scan and the static type check only: a converter that refuses a node for
        # its attributes or run-time inputs is reported by the export itself, which collects
        # every refusal and raises once, before anything is written.
        from unframe.backends.caffe2.driver import unsupported

        return unsupported(model)

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from unframe.backends.caffe2.native import read_model, run_net

        model = read_model(path)
        return run_net(model.predict_net, model.init_net, inputs)

    def run_exposing(
        self, path: Path, inputs: Mapping[str, np.ndarray], names: Sequence[str]
    ) -> dict[str, np.ndarray] | None:
        """Runs the nets with the blobs ``names`` added to the predict net's outputs.

        Only blobs one op writes once: a blob an op overwrites (in place) ends as its last value,
        which the import into the IR names otherwise.
        """
        from unframe.backends.caffe2.native import read_model, run_net

        model = read_model(path)
        net = model.predict_net
        writes = Counter(name for op in net.op for name in op.output)
        wanted = [n for n in names if writes[n] == 1 and n not in net.external_output]
        net.external_output.extend(wanted)
        return run_net(net, model.init_net, inputs)

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
