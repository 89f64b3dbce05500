"""ONNX backend: writes the IR as ``.onnx``, at a requested opset, with external data if large."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir

from unframe.shared_ir import io, opset
from unframe.shared_ir.errors import ConversionError


def export_onnx(model: ir.Model, path: Path, target_opset: int | None = None) -> None:
    """Writes ``model`` and checks the file with ``onnx.checker``'s full check."""
    if target_opset is not None:
        model = opset.convert_opset(model, target_opset, path=str(path))
    io.save_onnx(model, path)
    check_file(path)


def check_file(path: Path) -> None:
    """``onnx.checker`` with shape inference, by path so that models over 2 GB are checked too."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        first = str(error).strip().splitlines()[0]
        raise ConversionError(f"the written model fails onnx.checker: {first}") from None
