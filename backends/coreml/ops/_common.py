"""Helpers shared by the converter families."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext


def normalized_axes(axes: list[int], rank: int) -> list[int]:
    return [axis + rank if axis < 0 else axis for axis in axes]


def scalar_like(ctx: ExportContext, value: float, index: int = 0) -> Any:
    """A scalar constant in input ``index``'s element type (float32 where it is unknown)."""
    dtype = ctx.input_dtype(index)
    word = ctx.mil_dtype(dtype) if dtype is not None else "fp32"
    numpy_type = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}[word]
    return ctx.make_constant(np.asarray(value, numpy_type))


def is_float(ctx: ExportContext, index: int = 0) -> bool:
    dtype = ctx.input_dtype(index)
    return dtype is None or dtype.is_floating_point()


def require_float(ctx: ExportContext, what: str, index: int = 0) -> None:
    if not is_float(ctx, index):
        dtype = ctx.input_dtype(index)
        raise ctx.error(
            f"{what} on {dtype.name if dtype else '?'}: Core ML computes it on floats only"
        )


#: Integer types Core ML holds as int32 that are narrower: their value range (low, span).
_NARROW_INTEGERS = {
    ir.DataType.INT8: (-128, 256),
    ir.DataType.UINT8: (0, 256),
    ir.DataType.INT16: (-32768, 65536),
    ir.DataType.UINT16: (0, 65536),
}


def wrap_integer(ctx: ExportContext, x: Any, dtype: ir.DataType | None) -> Any:
    """``x`` (int32) wrapped into ``dtype``'s range, as a cast to a narrower integer wraps; other
    types as they are."""
    found = _NARROW_INTEGERS.get(dtype) if dtype is not None else None
    if found is None:
        return x
    low, span = found
    mb = ctx.mb
    shifted = mb.add(x=x, y=np.int32(-low)) if low else x
    wrapped = mb.mod(x=shifted, y=np.int32(span))
    return mb.add(x=wrapped, y=np.int32(low)) if low else wrapped
