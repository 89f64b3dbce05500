"""Helpers shared by the converter families."""

from __future__ import annotations

from typing import Any

import numpy as np

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
