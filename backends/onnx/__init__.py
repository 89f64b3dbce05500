"""ONNX backend: writes the IR as ``.onnx``, at a requested opset, with external data if large."""

from __future__ import annotations

from pathlib import Path

import onnx_ir as ir

from unframe.shared_ir import io, opset
from unframe.shared_ir.errors import BadInputError, ConversionError


def export_onnx(model: ir.Model, path: Path, target_opset: int | None = None) -> None:
    """Writes ``model`` and reads the file back as every input is read (``io.load_onnx``)."""
    if target_opset is not None:
        model = opset.convert_opset(model, target_opset, path=str(path))
    io.save_onnx(model, path)
    check_file(path)


def check_file(path: Path) -> None:
    """The written file passes what every ``.onnx`` unframe reads must pass.

    That is ``onnx.checker`` and strict type and shape inference on the graph without its
    weights, and each tensor's size and place (``shared_ir.onnx_checks``), read as
    ``load_onnx`` reads it: the weights stay mapped, models over 2 GB included. The input
    passed the same checks when it was read, so a failure here is the conversion's.
    """
    try:
        io.load_onnx(path)
    except BadInputError as error:
        raise ConversionError(
            f"the written model fails the checks every .onnx input passes: {error.message}",
            hint="a fault of the conversion, not of the input: please report it",
        ) from None
