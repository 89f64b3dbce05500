"""Opset targeting: onnx's version converter, with its failures turned into clear errors."""

from __future__ import annotations

import onnx
import onnx.defs
import onnx_ir as ir
from onnx import version_converter

from unframe.shared_ir.errors import UnsupportedError

DEFAULT_OPSET = 18
MIN_IMPORT_OPSET = 7


def newest_opset() -> int:
    return int(onnx.defs.onnx_opset_version())


def model_opset(model: ir.Model) -> int:
    return int(model.opset_imports.get("", model.opset_imports.get("ai.onnx", 0)))


def convert_opset(model: ir.Model, target: int, *, path: str | None = None) -> ir.Model:
    """The model at default-domain opset ``target``; unchanged where it already is.

    onnx's version converter works on protos; downgrades often fail outright (``No Adapter From
    Version 14 for Relu``), which we report as unsupported rather than pass on a broken model.
    """
    if not MIN_IMPORT_OPSET <= target <= newest_opset():
        raise UnsupportedError(
            f"opset {target} is outside what unframe targets ({MIN_IMPORT_OPSET}..{newest_opset()})",
            path=path,
        )
    if model_opset(model) == target:
        return model
    try:
        converted = version_converter.convert_version(ir.to_proto(model), target)
    except Exception as error:  # noqa: BLE001 - the converter raises bare RuntimeErrors
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsupportedError(
            f"cannot convert from opset {model_opset(model)} to {target}: {reason}",
            path=path,
            opset=target,
        ) from None
    return ir.from_proto(converted)
