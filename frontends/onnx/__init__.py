"""ONNX frontend: the IR is ONNX, so importing is loading, plus an opset range check."""

from __future__ import annotations

from pathlib import Path

import onnx_ir as ir

from unframe.shared_ir import io, opset
from unframe.shared_ir.errors import UnsupportedError


def import_onnx(path: Path) -> ir.Model:
    """Reads ``path``; models older than opset 7 are upgraded, newer than onnx knows refused."""
    model = io.load_onnx(path)
    version = opset.model_opset(model)
    if version > opset.newest_opset():
        raise UnsupportedError(
            f"opset {version} is newer than this onnx knows ({opset.newest_opset()})",
            path=str(path),
            opset=version,
            hint="upgrade the onnx package",
        )
    if version and version < opset.MIN_IMPORT_OPSET:
        model = opset.convert_opset(model, opset.MIN_IMPORT_OPSET, path=str(path))
    return model
