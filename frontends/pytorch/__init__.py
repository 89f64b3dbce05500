"""PyTorch frontend: ``.pt2`` programs, TorchScript files and Python factories -> the IR.

``from_torch`` converts a module in memory; ``load_pytorch`` reads what the CLI is handed.
"""

from __future__ import annotations

from unframe.frontends.pytorch.loading import (
    PT2_SUFFIXES,
    TORCHSCRIPT_SUFFIXES,
    is_factory_spec,
    load_exported_program,
    load_pytorch,
    load_torchscript,
)
from unframe.frontends.pytorch.torch_onnx import DEFAULT_OPSET, ExporterFallbackWarning, from_torch

__all__ = [
    "DEFAULT_OPSET",
    "PT2_SUFFIXES",
    "TORCHSCRIPT_SUFFIXES",
    "ExporterFallbackWarning",
    "from_torch",
    "is_factory_spec",
    "load_exported_program",
    "load_pytorch",
    "load_torchscript",
]
