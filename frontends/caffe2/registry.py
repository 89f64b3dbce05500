"""The Caffe2 import registry: one converter per Caffe2 op type (domain "caffe2")."""

from __future__ import annotations

from unframe.frontends.caffe2.context import ImportConverter
from unframe.shared_ir.op_registry import OpRegistry

#: Caffe2 op types live in their own domain so that ONNX's schemas never version them.
DOMAIN = "caffe2"

ops: OpRegistry[ImportConverter] = OpRegistry("caffe2", "import")
