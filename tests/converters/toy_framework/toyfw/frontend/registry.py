"""The toyfw import registry: one converter per toyfw layer kind."""

from __future__ import annotations

from toyfw.frontend.context import Converter
from unframe.shared_ir.op_registry import OpRegistry

#: Layer kinds live in a domain of their own, so that ONNX's schemas never version them.
DOMAIN = "toyfw"

ops: OpRegistry[Converter] = OpRegistry("toyfw", "import")
