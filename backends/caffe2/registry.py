"""The Caffe2 export registry: one converter per ONNX op and schema version."""

from __future__ import annotations

from unframe.backends.caffe2.context import Converter
from unframe.shared_ir.op_registry import OpRegistry

ops: OpRegistry[Converter] = OpRegistry("caffe2", "export")
