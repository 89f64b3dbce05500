"""The TFLite (LiteRT) adapter: ``.tflite`` FlatBuffers in and out, run on ``ai-edge-litert``.

The backend builds the TensorFlow backend's signature function and lowers it with TFLiteConverter;
the frontend hands the file to tf2onnx's TFLite path. tensorflow, tf2onnx and LiteRT are imported
lazily, inside the methods, so that listing adapters never imports them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.errors import BadInputError, UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry

#: ``ConvertOptions.extra`` key that lets TF ops TFLite's builtins lack into the file as Flex ops
#: (SELECT_TF_OPS): such a file needs a LiteRT build with the Flex delegate, which is not this one.
SELECT_TF_OPS_KEY = "tflite_select_tf_ops"

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: each test's model is traced by the TensorFlow backend into a `tf.function`,
  lowered by `tf.lite.TFLiteConverter` to TFLite builtin ops (float32, no Flex/SELECT_TF_OPS)
  and run by LiteRT's interpreter (`ai_edge_litert`) from the bytes in memory
  (`TFLiteFramework.run_ir`); no file is written per test.
- **Refusals**: ops TFLite's builtins cannot hold are refused with the TF op TFLiteConverter
  named; LiteRT here has no Flex delegate, so a Flex op could not run.
- **Types TFLite lacks** (float8 E4M3FN/E4M3FNUZ/E5M2/E5M2FNUZ, E8M0, float4 E2M1, int4, uint4,
  int2, uint2) are carried in types it has: the float formats as their uint8 bit patterns, the
  small integers as int8/uint8 values. The file records each carried input's and output's ONNX
  type, and unframe's LiteRT runner feeds a float8 array as its uint8 bits and reads the output
  back as float8 (ml_dtypes views). The arithmetic runs in LiteRT as builtin ops: decoding is a
  Gather from a table of the format's values; encoding counts the thresholds where onnx's
  reference rounding changes code (nearest-even, `saturate`, E8M0's `round_mode`), bit-exact.
"""


def precision_option(options: ConvertOptions) -> str:
    """``extra["precision"]`` checked: "float32" (default) or "float16"."""
    precision = str(options.extra.get("precision") or "float32").lower()
    if precision not in ("float32", "float16"):
        raise BadInputError(
            f"tflite writes float32 or float16 weights, not {precision!r}",
            hint="--precision float32|float16",
        )
    return precision


class TFLiteFramework(Framework):
    """TFLite/LiteRT: reads and writes ``.tflite`` FlatBuffers; runs them on LiteRT."""

    name: ClassVar[str] = "tflite"
    extra: ClassVar[str | None] = "tflite"
    requires: ClassVar[tuple[str, ...]] = ("tensorflow", "tf2onnx", "ai_edge_litert")
    reads: ClassVar[tuple[str, ...]] = (".tflite",)
    writes: ClassVar[tuple[str, ...]] = (".tflite",)
    conformance_note: ClassVar[str] = _CONFORMANCE_NOTE

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        self.ensure_installed()
        from unframe.frontends.tflite import load_tflite

        return load_tflite(path, options)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        path.write_bytes(self._convert(model, options).data)

    def _convert(self, model: ir.Model, options: ConvertOptions) -> Any:
        self.ensure_installed()
        from unframe.backends.tflite import to_tflite
        from unframe.converters.adapters.tensorflow import layout_option

        export = to_tflite(
            model,
            precision=precision_option(options),
            select_tf_ops=bool(options.extra.get(SELECT_TF_OPS_KEY, False)),
            layout=layout_option(options),
        )
        if export.transposes:
            warnings.warn(
                f"tflite: the layout pass added {export.transposes} Transpose(s) at the "
                "boundaries of channels-last (NHWC) regions",
                stacklevel=3,
            )
        return export

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.ensure_installed()
        from unframe.backends.tflite.native import read_tflite, run_tflite

        return run_tflite(read_tflite(path), inputs, where=str(path))

    def declared_inputs(self, path: Path) -> list[ir.Value] | None:
        """From the file's signature and unframe's record: a file whose inputs or outputs are of
        a type TFLite lacks (float8, int4, ...) runs though the IR cannot hold it."""
        self.ensure_installed()
        from unframe.backends.tflite.native import read_tflite, signature_inputs

        return signature_inputs(read_tflite(path), where=str(path))

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Converts in memory and runs the bytes on LiteRT (no file written)."""
        from unframe.backends.tflite import run_export

        return run_export(self._convert(model, options or ConvertOptions()), inputs)

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.tflite.driver import export_registry

        return export_registry()

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        from unframe.backends.tensorflow.driver import unsupported

        return unsupported(model)
