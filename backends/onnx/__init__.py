"""ONNX backend: writes the IR as ``.onnx``, at a requested opset, with external data if large."""

from __future__ import annotations

from pathlib import Path

import onnx_ir as ir

from unframe.shared_ir import io, opset


def export_onnx(model: ir.Model, path: Path, target_opset: int | None = None) -> None:
    if target_opset is not None:
        model = opset.convert_opset(model, target_opset, path=str(path))
    io.save_onnx(model, path)
