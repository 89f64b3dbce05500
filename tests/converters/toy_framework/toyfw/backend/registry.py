"""The toyfw export registry: one converter per ONNX op, at the op's ``since_version``."""

from __future__ import annotations

from toyfw.backend.context import Converter
from unframe.shared_ir.op_registry import OpRegistry

ops: OpRegistry[Converter] = OpRegistry("toyfw", "export")
