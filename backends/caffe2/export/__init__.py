"""Caffe2 backend: ``ir.Model`` -> predict and init NetDefs with Caffe2's own operators."""

from unframe.backends.caffe2.export.context import ExportContext, ExportedNets
from unframe.backends.caffe2.export.driver import export_model, export_registry

__all__ = ["ExportContext", "ExportedNets", "export_model", "export_registry"]
