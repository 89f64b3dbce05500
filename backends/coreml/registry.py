"""The Core ML export registry: one converter per ONNX op and schema version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from unframe.shared_ir.op_registry import OpRegistry

if TYPE_CHECKING:
    import onnx_ir as ir

    from unframe.backends.coreml.context import ExportContext

#: A converter returns one MIL ``Var`` per ONNX output (None for an output it does not produce).
Converter = Callable[["ir.Node", "ExportContext"], Sequence[Any]]

ops: OpRegistry[Converter] = OpRegistry("coreml", "export")
