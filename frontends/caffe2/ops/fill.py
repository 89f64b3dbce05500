"""Caffe2 fill ops met in a predict net: GivenTensor*Fill, RangeFill and the random fills.

A fill's shape follows Caffe2's FillerOp (filler_op.h): the ``shape`` argument without an input;
with one, the input's shape, or its values where ``input_as_shape=1``, then ``extra_shape``.
Given and range fills become constants where the shape is known here. Random fills become ONNX's
RandomUniform/RandomNormal where their distribution is one of those exactly: every run draws new
values, as in Caffe2, and none will equal the reference executor's draws.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import (
    GIVEN_FILL_TYPES,
    GIVEN_TENSOR_FILL_DTYPES,
    NUMPY_DTYPES,
    caffe2_pb2,
    get_floats,
    get_ints,
)
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef
DataType = caffe2_pb2.TensorProto


def _shape(op: Op, args: Args, ctx: ImportContext) -> list[int] | ir.Value:
    """The fill's shape: a list where known here, else an int64 value computed at run time."""
    extra = args.integers("extra_shape") or []
    as_shape = args.integer("input_as_shape", 0)
    if not op.input:
        if extra:
            raise ctx.bad("extra_shape needs an input (it extends the input's shape)")
        if as_shape:
            raise ctx.bad("input_as_shape=1 needs an input that holds the shape")
        arg = args.args.get("shape")
        if arg is not None and not arg.ints and arg.HasField("i"):
            raise ctx.bad("argument 'shape' must be a list, got a scalar")
        shape = args.integers("shape") or []
        if any(d < 0 for d in shape):
            raise ctx.bad(f"shape {shape} has a negative dimension")
        return shape
    if args.has("shape"):
        raise ctx.bad("give the shape either as the shape argument or as an input, not both")
    source = ctx.input(0)
    if as_shape:
        values = ctx.known_value(source)
        if values is not None:
            return [int(v) for v in values.reshape(-1)] + extra
        dims = ctx.op1("Cast", [source], {"to": ir.DataType.INT64})
    else:
        static = ctx.shape(source)
        if static is not None:
            return list(static) + extra
        dims = ctx.op1("Shape", [source])
    if not extra:
        return dims
    return ctx.op1("Concat", [dims, ctx.ints(extra)], {"axis": 0})


def _constant(ctx: ImportContext, array: np.ndarray) -> ir.Value:
    tensor = ir.StringTensor(array) if array.dtype == object else ir.tensor(array)
    return ctx.op1("Constant", [], {"value": tensor})


def _reshaped(ctx: ImportContext, flat: np.ndarray, shape: list[int] | ir.Value) -> ir.Value:
    if isinstance(shape, list):
        if flat.size != math.prod(shape):
            raise ctx.bad(f"has {flat.size} values for shape {shape} ({math.prod(shape)} elements)")
        return _constant(ctx, flat.reshape(shape))
    return ctx.op1("Reshape", [_constant(ctx, flat), shape])


# -- given values -------------------------------------------------------------------------------


def _values(args: Args, data_type: int) -> np.ndarray:
    """``values`` as Caffe2 reads it for ``data_type``: floats, ints or strings."""
    arg = args.get("values")
    if data_type == DataType.STRING:
        return np.array(list(arg.strings) if arg else [], dtype=object)  # bytes, as ONNX holds them
    if arg is None:
        return np.zeros(0, dtype=NUMPY_DTYPES[data_type])
    if data_type in (DataType.FLOAT, DataType.DOUBLE):
        raw = get_floats(arg) if arg.floats else get_ints(arg)
    else:
        raw = get_ints(arg)
    return np.asarray(raw).astype(NUMPY_DTYPES[data_type])


def given_tensor_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    data_type = GIVEN_FILL_TYPES[op.type]
    if op.type == "GivenTensorFill" and args.has("dtype"):
        data_type = args.integer("dtype", DataType.FLOAT)
        if data_type not in GIVEN_TENSOR_FILL_DTYPES:
            raise ctx.bad(f"GivenTensorFill cannot fill Caffe2 data type {data_type}")
    else:
        args.used.add("dtype")  # the typed fills ignore it, as Caffe2 does
    shape = _shape(op, args, ctx)
    ctx.output(0, _reshaped(ctx, _values(args, data_type), shape))


for _type in GIVEN_FILL_TYPES:
    ops.register(_type, since=1, domain=DOMAIN)(given_tensor_fill)


@ops.register("RangeFill", since=1, domain=DOMAIN)
def range_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    """0, 1, 2, ... in row-major order, as float."""
    shape = _shape(op, args, ctx)
    if isinstance(shape, list):
        ctx.output(0, _constant(ctx, np.arange(math.prod(shape), dtype=np.float32).reshape(shape)))
        return
    count = ctx.op1("ReduceProd", [shape], {"keepdims": 0})
    zero = ctx.make_constant(np.array(0, np.int64), "zero")
    one = ctx.make_constant(np.array(1, np.int64), "one")
    flat = ctx.op1("Cast", [ctx.op1("Range", [zero, count, one])], {"to": ir.DataType.FLOAT})
    ctx.output(0, ctx.op1("Reshape", [flat, shape]))


# -- random -------------------------------------------------------------------------------------
def _random(
    ctx: ImportContext, kind: str, shape: list[int] | ir.Value, attrs: dict[str, float]
) -> ir.Value:
    """RandomUniform/RandomNormal of float32 ``shape`` (a ...Like op for a run-time shape)."""
    if isinstance(shape, list):
        dims = ir.AttrInt64s("shape", shape)  # typed: an empty list (a scalar) has no type
        return ctx.op1(kind, [], {**attrs, "shape": dims, "dtype": ir.DataType.FLOAT})
    like = ctx.op1("ConstantOfShape", [shape])
    return ctx.op1(f"{kind}Like", [like], {**attrs, "dtype": ir.DataType.FLOAT})


@ops.register("UniformFill", since=1, domain=DOMAIN)
def uniform_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    """Uniform float32 values in [min, max)."""
    if len(op.input) == 2:
        raise ctx.bad("takes no input, a shape input, or shape, min and max inputs (not 2)")
    if len(op.input) == 3:
        raise ctx.unsupported(
            "UniformFill with min and max as inputs is not imported: ONNX's RandomUniform takes "
            "its bounds as attributes, and Caffe2 gives an empty tensor where min > max"
        )
    low, high = args.number("min", 0.0), args.number("max", 1.0)
    if not low < high:
        raise ctx.bad(f"min ({low}) must be less than max ({high}) (Caffe2 enforces it)")
    shape = _shape(op, args, ctx)
    ctx.output(0, _random(ctx, "RandomUniform", shape, {"low": low, "high": high}))


@ops.register("GaussianFill", since=1, domain=DOMAIN)
def gaussian_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    """Normal float32 values with ``mean`` and ``std``."""
    attrs = {"mean": args.number("mean", 0.0), "scale": args.number("std", 1.0)}
    ctx.output(0, _random(ctx, "RandomNormal", _shape(op, args, ctx), attrs))


def _static(op: Op, args: Args, ctx: ImportContext, why: str) -> list[int]:
    shape = _shape(op, args, ctx)
    if not isinstance(shape, list):
        raise ctx.unsupported(
            f"{op.type} with a shape known only at run time is not imported: {why}"
        )
    return shape


@ops.register("XavierFill", since=1, domain=DOMAIN)
def xavier_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    """Uniform in +-sqrt(3 / fan_in), fan_in = size / shape[0]: RandomUniform for a known shape."""
    shape = _static(op, args, ctx, "its bounds depend on the shape, RandomUniform's are fixed")
    if not shape or shape[0] == 0:
        raise ctx.bad(f"XavierFill of shape {shape} has no fan-in (Caffe2 divides by it)")
    if math.prod(shape) == 0:
        ctx.output(0, _constant(ctx, np.zeros(shape, dtype=np.float32)))
        return
    scale = float(np.sqrt(np.float32(3) / np.float32(math.prod(shape) // shape[0])))
    ctx.output(0, _random(ctx, "RandomUniform", shape, {"low": -scale, "high": scale}))


@ops.register("MSRAFill", since=1, domain=DOMAIN)
def msra_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    """Normal, std sqrt(2 / fan_out), fan_out = size / shape[1]: RandomNormal for a known shape."""
    shape = _static(op, args, ctx, "its std depends on the shape, RandomNormal's is fixed")
    if len(shape) < 2 or shape[1] == 0:
        raise ctx.bad(f"MSRAFill of shape {shape} has no fan-out (Caffe2 divides by it)")
    if math.prod(shape) == 0:
        ctx.output(0, _constant(ctx, np.zeros(shape, dtype=np.float32)))
        return
    scale = float(np.sqrt(np.float32(2) / np.float32(math.prod(shape) // shape[1])))
    ctx.output(0, _random(ctx, "RandomNormal", shape, {"mean": 0.0, "scale": scale}))


@ops.register("UniformIntFill", since=1, domain=DOMAIN)
def uniform_int_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    raise ctx.unsupported(
        "UniformIntFill (uniform int32 in [min, max]) has no exact ONNX form: ONNX's random "
        "ops draw floating-point values only"
    )
