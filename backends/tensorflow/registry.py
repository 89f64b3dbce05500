"""The TensorFlow backend's one op registry (ONNX op -> TF ops)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import onnx_ir as ir

from unframe.shared_ir.op_registry import OpRegistry

if TYPE_CHECKING:
    from unframe.backends.tensorflow.context import ExportContext

#: One entry per ONNX output: a ``tf.Tensor`` in ONNX's layout, a ``Physical`` (a tensor held in
#: another layout), or None for an optional output nobody reads.
Outputs: TypeAlias = Sequence[Any]

#: ``def relu_v14(node, ctx) -> Outputs``
Converter: TypeAlias = "Callable[[ir.Node, ExportContext], Outputs]"

ops: OpRegistry[Converter] = OpRegistry("tensorflow", "export")

__all__ = ["Converter", "Outputs", "ops"]
