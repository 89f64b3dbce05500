"""Fill ops: GivenTensor*Fill (weights in init nets), ConstantFill, random fills, RangeFill.

Every filler takes its shape as Caffe2's FillerOp does: from the ``shape`` argument when it has no
input; from its input's shape, or with ``input_as_shape=1`` from the input's values, when it has
one; ``extra_shape`` is appended to a shape taken from an input.
"""

from __future__ import annotations

import math

import numpy as np

from unframe.backends.caffe2.native.dtypes import GIVEN_TENSOR_FILL_DTYPES, DataType
from unframe.backends.caffe2.native.executor.registry import (
    FRAMEWORK,
    OpContext,
    caffe2_op,
    numpy_dtype,
)
from unframe.backends.caffe2.native.values import get_floats
from unframe.shared_ir.errors import LimitExceededError
from unframe.shared_ir.limits import check_tensor_bytes, declared_bytes

FLOAT = DataType.Value("FLOAT")
INT64 = DataType.Value("INT64")
_FLOATING = {DataType.Value(n) for n in ("FLOAT", "DOUBLE", "FLOAT16")}
_INTEGER = {
    DataType.Value(n) for n in ("INT32", "INT64", "INT16", "INT8", "UINT8", "UINT16", "BYTE")
}


def fill_shape(ctx: OpContext) -> list[int]:
    """The output shape of a filler, from its arguments and its first input."""
    extra = ctx.arg_ints("extra_shape")
    if ctx.num_inputs == 0:
        if ctx.arg_int("input_as_shape", 0):
            raise ctx.error("input_as_shape=1 needs an input that holds the shape")
        if extra:
            raise ctx.error("extra_shape needs an input (it extends the input's shape)")
        shape = ctx.arg_ints("shape")
    else:
        if ctx.has("shape"):
            raise ctx.error("give the shape either as the shape argument or as an input, not both")
        source = ctx.input(0)
        if ctx.arg_int("input_as_shape", 0):
            if source.ndim != 1 or not np.issubdtype(source.dtype, np.integer):
                raise ctx.error(
                    f"with input_as_shape=1 the input must be a 1-D integer tensor, got "
                    f"{source.dtype} {source.shape}"
                )
            shape = [int(v) for v in source]
        else:
            shape = list(source.shape)
        shape += extra
    if any(d < 0 for d in shape):
        raise ctx.error(f"shape {shape} has a negative dimension")
    # Checked before anything is allocated; 8 bytes an element covers every filler's type and
    # the float64 draws the random ones make first.
    try:
        check_tensor_bytes(declared_bytes(shape, 64), what=f"the fill's shape {shape}")
    except LimitExceededError as error:
        error.framework, error.node, error.op_type = FRAMEWORK, ctx.where, ctx.op.type or "?"
        raise
    return shape


def _float_values(ctx: OpContext) -> np.ndarray:
    """``values`` as floats; large weight lists are read without a Python loop."""
    arg = ctx.arg("values")
    if arg is not None and len(arg.floats):
        return get_floats(arg).astype(np.float64)
    return np.asarray(ctx.arg_floats("values"), dtype=np.float64)


def _given(ctx: OpContext, values: np.ndarray) -> list[np.ndarray]:
    shape = fill_shape(ctx)
    if values.size != math.prod(shape):
        raise ctx.error(f"has {values.size} values for shape {shape} ({math.prod(shape)} elements)")
    return [values.reshape(shape)]


@caffe2_op("GivenTensorFill")
def given_tensor_fill(ctx: OpContext) -> list[np.ndarray]:
    """``values`` (floats; ints for an integer or bool ``dtype``) reshaped to the fill shape."""
    data_type = ctx.arg_int("dtype", FLOAT)
    if data_type not in GIVEN_TENSOR_FILL_DTYPES:
        # given_tensor_fill_op.h: the dtype switch has FLOAT, DOUBLE, BOOL, INT16, INT32, INT64
        # and STRING; anything else throws "Unexpected 'dtype' argument value".
        raise ctx.error(
            f"Unexpected 'dtype' argument value: {DataType.Name(data_type)} (Caffe2 fills FLOAT, "
            "DOUBLE, BOOL, INT16, INT32, INT64 or STRING: caffe2/operators/given_tensor_fill_op.h)"
        )
    dtype = numpy_dtype(ctx, data_type)
    if data_type in _FLOATING:
        values = _float_values(ctx)
    elif data_type == DataType.Value("STRING"):
        arg = ctx.arg("values")
        values = np.asarray(list(arg.strings) if arg is not None else [], dtype=object)
    else:
        values = np.asarray(ctx.arg_ints("values"), dtype=np.int64)
    return _given(ctx, values.astype(dtype))


@caffe2_op("GivenTensorDoubleFill")
def given_tensor_double_fill(ctx: OpContext) -> list[np.ndarray]:
    return _given(ctx, _float_values(ctx))


@caffe2_op("GivenTensorIntFill")
def given_tensor_int_fill(ctx: OpContext) -> list[np.ndarray]:
    return _given(ctx, np.asarray(ctx.arg_ints("values"), dtype=np.int32))


@caffe2_op("GivenTensorInt16Fill")
def given_tensor_int16_fill(ctx: OpContext) -> list[np.ndarray]:
    return _given(ctx, np.asarray(ctx.arg_ints("values"), dtype=np.int16))


@caffe2_op("GivenTensorInt64Fill")
def given_tensor_int64_fill(ctx: OpContext) -> list[np.ndarray]:
    return _given(ctx, np.asarray(ctx.arg_ints("values"), dtype=np.int64))


@caffe2_op("GivenTensorBoolFill")
def given_tensor_bool_fill(ctx: OpContext) -> list[np.ndarray]:
    return _given(ctx, np.asarray(ctx.arg_ints("values"), dtype=np.int64).astype(np.bool_))


@caffe2_op("GivenTensorStringFill")
def given_tensor_string_fill(ctx: OpContext) -> list[np.ndarray]:
    arg = ctx.arg("values")
    return _given(ctx, np.asarray(list(arg.strings) if arg is not None else [], dtype=object))


@caffe2_op("ConstantFill")
def constant_fill(ctx: OpContext) -> list[np.ndarray]:
    """A tensor of ``value``; without ``dtype``, a float ``value`` gives FLOAT, an int INT64."""
    value_arg = ctx.arg("value")
    if ctx.has("dtype"):
        data_type = ctx.arg_int("dtype", FLOAT)
    elif value_arg is not None and value_arg.HasField("i") and not value_arg.HasField("f"):
        data_type = INT64
    elif value_arg is not None and not value_arg.HasField("f"):
        raise ctx.error("argument 'value' must be a number when dtype is not given")
    else:
        data_type = FLOAT
    dtype = numpy_dtype(ctx, data_type)
    value: object
    if data_type in _FLOATING:
        value = ctx.arg_float("value", 0.0)
    elif data_type in _INTEGER:
        value = ctx.arg_int("value", 0)
    elif data_type == DataType.Value("BOOL"):
        value = bool(ctx.arg_int("value", 0))
    elif data_type == DataType.Value("STRING"):
        value = ctx.arg_str("value", "").encode()
    else:
        raise ctx.unsupported(f"dtype {DataType.Name(data_type)} is not supported")
    return [np.full(fill_shape(ctx), value, dtype=dtype)]


def _bounds(ctx: OpContext, low: float, high: float, dtype: type) -> tuple[float, float, bool]:
    """min/max from arguments, or (with 3 inputs) from inputs 1 and 2, as UniformFillOp takes
    them (filler_op.h): arguments need min < max; inputs one value each of the op's type, and
    where min > max the output's first dim becomes 0 (the third value says so)."""
    if ctx.num_inputs == 3:
        if ctx.has("min") or ctx.has("max"):
            raise ctx.error("Cannot set both min arg and min input blob (or max)")
        bounds = [ctx.input(1), ctx.input(2)]
        for name, bound in zip(("min", "max"), bounds, strict=True):
            if bound.size != 1 or bound.dtype != np.dtype(dtype):
                raise ctx.error(
                    f"{name} blob must be a scalar {np.dtype(dtype)}, got {bound.dtype} "
                    f"{bound.shape} (caffe2/operators/filler_op.h)"
                )
        low, high = (float(b.reshape(-1)[0]) for b in bounds)
        return low, high, low > high
    low, high = ctx.arg_float("min", low), ctx.arg_float("max", high)
    if not low < high:
        raise ctx.error(
            f"Max value should be bigger than min value: min {low}, max {high} "
            "(caffe2/operators/filler_op.h)"
        )
    return low, high, False


def _emptied(ctx: OpContext, shape: list[int], dtype: type) -> list[np.ndarray]:
    """UniformFillOp with input bounds min > max: the output with its first dim 0, unfilled."""
    if not shape:
        raise ctx.error("min > max empties the output's first dim, and a 0-d output has none")
    return [np.zeros([0, *shape[1:]], dtype=dtype)]


@caffe2_op("UniformFill")
def uniform_fill(ctx: OpContext) -> list[np.ndarray]:
    low, high, empty = _bounds(ctx, 0.0, 1.0, np.float32)
    shape = fill_shape(ctx)
    if empty:
        return _emptied(ctx, shape, np.float32)
    return [ctx.rng().uniform(low, high, size=shape).astype(np.float32)]


@caffe2_op("UniformIntFill")
def uniform_int_fill(ctx: OpContext) -> list[np.ndarray]:
    low, high, empty = _bounds(ctx, 0.0, 1.0, np.int32)
    shape = fill_shape(ctx)
    if empty:
        return _emptied(ctx, shape, np.int32)
    return [ctx.rng().integers(int(low), int(high), size=shape, endpoint=True).astype(np.int32)]


@caffe2_op("GaussianFill")
def gaussian_fill(ctx: OpContext) -> list[np.ndarray]:
    shape = fill_shape(ctx)
    mean, std = ctx.arg_float("mean", 0.0), ctx.arg_float("std", 1.0)
    return [ctx.rng().normal(mean, std, size=shape).astype(np.float32)]


@caffe2_op("XavierFill")
def xavier_fill(ctx: OpContext) -> list[np.ndarray]:
    """Uniform in +-sqrt(3 / fan_in), fan_in being the size over the first dimension."""
    shape = fill_shape(ctx)
    # filler_op.h: fan_in = numel / dim32(0), an int division: a 0-d shape has no dim 0 and a
    # first dim of 0 divides by zero. Another dim of 0 gives an empty output.
    if not shape or shape[0] == 0:
        raise ctx.error(
            f"shape {shape}: fan_in = numel / dim 0 needs a first dim that is not 0 "
            "(caffe2/operators/filler_op.h)"
        )
    fan_in = math.prod(shape) // shape[0]
    if fan_in == 0:
        return [np.zeros(shape, dtype=np.float32)]
    scale = math.sqrt(3.0 / fan_in)
    return [ctx.rng().uniform(-scale, scale, size=shape).astype(np.float32)]


@caffe2_op("MSRAFill")
def msra_fill(ctx: OpContext) -> list[np.ndarray]:
    """Normal with std sqrt(2 / fan_out), fan_out being the size over the second dimension."""
    shape = fill_shape(ctx)
    # filler_op.h: fan_out = numel / dim32(1), an int division: fewer than 2 dims have no
    # dim 1 and a dim 1 of 0 divides by zero. Another dim of 0 gives an empty output.
    if len(shape) < 2 or shape[1] == 0:
        raise ctx.error(
            f"shape {shape}: fan_out = numel / dim 1 needs at least 2 dims and a dim 1 that is "
            "not 0 (caffe2/operators/filler_op.h)"
        )
    fan_out = math.prod(shape) // shape[1]
    if fan_out == 0:
        return [np.zeros(shape, dtype=np.float32)]
    std = math.sqrt(2.0 / fan_out)
    return [ctx.rng().normal(0.0, std, size=shape).astype(np.float32)]


@caffe2_op("RangeFill")
def range_fill(ctx: OpContext) -> list[np.ndarray]:
    """0, 1, 2, ... in row-major order, as float."""
    shape = fill_shape(ctx)
    return [np.arange(math.prod(shape), dtype=np.float32).reshape(shape)]
