"""What the op families share: imports, broadcasting in a layout, axes and ONNX rounding."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.tensorflow.context import (
    ExportContext,
    Perm,
    Physical,
    channels_last,
    inverse,
)
from unframe.backends.tensorflow.registry import Outputs, ops

__all__ = [
    "ExportContext",
    "Outputs",
    "Perm",
    "Physical",
    "channels_last",
    "elementwise_inputs",
    "for_tflite",
    "in_kernel_type",
    "in_tflite_type",
    "inverse",
    "ir",
    "normalize_axis",
    "np",
    "ops",
    "wrap",
]


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def elementwise_inputs(
    ctx: ExportContext, count: int | None = None
) -> tuple[list[Any], Perm | None]:
    """The inputs of a broadcasting elementwise op, all in one layout, and that layout.

    Where an input is held channels-last and every other one is either held the same way or a
    constant (broadcast to the full rank and transposed in numpy, at no run-time cost), the op
    runs in that layout. Otherwise every input is read in ONNX's layout.
    """
    indices = list(range(count if count is not None else len(ctx.node.inputs)))
    constants = {i: ctx.constant_input(i) for i in indices}
    held = {i: ctx.physical(i) for i in indices if constants[i] is None}
    layouts = {h.perm for h in held.values() if h.perm is not None}
    if len(layouts) == 1 and all(h.perm is not None for h in held.values()):
        perm = next(iter(layouts))
        rank = len(perm)
        tensors: list[Any] = []
        for index in indices:
            constant = constants[index]
            if constant is None:
                tensors.append(held[index].tensor)
                continue
            if constant.ndim > rank:
                break
            if constant.size == 1:
                # A scalar broadcasts alike; TF's remapper fuses Conv2D+BiasAdd+Add with a
                # [1,1,1,1] addend into a kernel that then fails ("as many biases as...").
                tensors.append(ctx.make_constant(constant.reshape(())))
                continue
            aligned = constant.reshape((1,) * (rank - constant.ndim) + constant.shape)
            tensors.append(ctx.make_constant(np.ascontiguousarray(aligned.transpose(perm))))
        else:
            return tensors, perm
    return [ctx.input(i) for i in indices], None


def wrap(tensor: Any, perm: Perm | None) -> Any:
    """A result in ``perm``'s layout (a plain tensor where that is ONNX's)."""
    return tensor if perm is None else Physical(tensor, perm)


#: Element types some TF kernels lack, and the type that holds each of their values exactly.
#: Integers keep their low bits when cast back, so wrap-around arithmetic is ONNX's as well.
_WIDER: dict[str, str] = {
    "int8": "int64",
    "int16": "int64",
    "uint8": "int64",
    "uint16": "int64",
    "uint32": "int64",
    "float16": "float32",
    "bfloat16": "float32",
}


def in_kernel_type(
    ctx: ExportContext,
    tensors: list[Any],
    fn: Any,
    lacking: frozenset[str] | set[str],
) -> Any:
    """``fn(*tensors)``, run in a wider type where the tensors' type is one of ``lacking`` (the
    dtype names TF has no kernel of ``fn`` for), the result cast back where it has that type.

    Exact where the wider type holds every value and the op's result in the narrow type is the
    wide result rounded (floats) or truncated to the low bits (integers): elementwise arithmetic,
    comparisons, shifts, remainders.
    """
    tf = ctx.tf
    dtype = tensors[0].dtype
    if dtype.name not in lacking:
        return fn(*tensors)
    wide = tf.as_dtype(_WIDER[dtype.name])
    result = fn(*[tf.cast(t, wide) if t.dtype == dtype else t for t in tensors])
    return tf.cast(result, dtype) if result.dtype == wide else result


#: Element types TFLite's builtin arithmetic and comparisons lack (unquantized), and the type that
#: holds each of their values exactly; results cast back keep ONNX's values (low bits, rounding).
_TFLITE_WIDER: dict[str, str] = {
    "int8": "int32",
    "uint8": "int32",
    "int16": "int32",
    "uint16": "int32",
    "uint32": "int64",
    "float16": "float32",
    "bfloat16": "float32",
}


def for_tflite(ctx: ExportContext) -> bool:
    """Whether this export is lowered to TFLite builtins next (``ExportState.target``)."""
    return ctx.state.target == "tflite"


def in_tflite_type(ctx: ExportContext, fn: Any) -> Any:
    """``fn`` itself, or for a TFLite export, ``fn`` run in int32/float32 where its tensors' type
    is one TFLite's builtin kernels lack and the wider type holds every value (see
    ``in_kernel_type`` for why that is exact for elementwise arithmetic and comparisons)."""
    if not for_tflite(ctx):
        return fn

    def widened(*tensors: Any) -> Any:
        dtype = tensors[0].dtype
        wide_name = _TFLITE_WIDER.get(dtype.name)
        if wide_name is None:
            return fn(*tensors)
        tf = ctx.tf
        wide = tf.as_dtype(wide_name)
        result = fn(*[tf.cast(t, wide) if t.dtype == dtype else t for t in tensors])
        return tf.cast(result, dtype) if result.dtype == wide else result

    return widened
