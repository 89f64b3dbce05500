"""Caffe2 frontend: predict and init NetDefs -> ``ir.Model`` (opset 18)."""

from unframe.frontends.caffe2.driver import import_caffe2, import_registry

__all__ = ["import_caffe2", "import_registry"]
