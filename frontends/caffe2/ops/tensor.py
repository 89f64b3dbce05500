"""Caffe2 shape and data-movement ops: Reshape, Concat, Split, Transpose, Squeeze, resizing."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import IR_DTYPES, caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef


@ops.register("Reshape", since=1, domain=DOMAIN)
def reshape(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    shape_arg = args.integers("shape")
    if shape_arg is not None and len(op.input) > 1:
        raise ctx.bad("give the new shape as an argument or as a second input, not both")
    if shape_arg is not None:
        shape = ctx.ints(shape_arg)
    elif len(op.input) > 1:
        shape = ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.INT64})
    else:
        raise ctx.bad("Reshape needs a shape argument or a second input")
    ctx.output(0, ctx.op1("Reshape", [x, shape]))
    if ctx.num_outputs() > 1:
        ctx.output(1, ctx.op1("Shape", [x]))


def _axis(args: Args, default: int = 1) -> int:
    if args.has("axis_str"):
        order = args.string("order", "NCHW")
        return order.index(args.string("axis_str", "C"))
    return args.integer("axis", default)


@ops.register("Concat", since=1, domain=DOMAIN)
def concat(op: Op, args: Args, ctx: ImportContext) -> None:
    axis = _axis(args)
    inputs = [ctx.input(i) for i in range(len(op.input))]
    if args.integer("add_axis", 0):
        inputs = [ctx.op1("Unsqueeze", [v, ctx.ints([axis])]) for v in inputs]
    ctx.output(0, ctx.op1("Concat", list(inputs), {"axis": axis}))
    if ctx.num_outputs() > 1:
        # split_info: each input's size along the axis, as int32.
        sizes = []
        for value in inputs:
            rank = ctx.rank(value)
            start = axis % rank
            sizes.append(ctx.op1("Shape", [value], {"start": start, "end": start + 1}))
        joined = ctx.op1("Concat", list(sizes), {"axis": 0})
        ctx.output(1, ctx.op1("Cast", [joined], {"to": ir.DataType.INT32}))


@ops.register("Split", since=1, domain=DOMAIN)
def split(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    axis = _axis(args)
    sizes = args.integers("split")
    if len(op.input) > 1:
        sizes_value = ctx.known_value(ctx.input(1))
        if sizes_value is None:
            runtime_sizes = ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.INT64})
            parts = ctx.node(
                "Split", [x, runtime_sizes], {"axis": axis}, num_outputs=ctx.num_outputs()
            )
            for i, value in enumerate(parts):
                ctx.output(i, value)
            return
        sizes = [int(s) for s in sizes_value.reshape(-1)]
    count = ctx.num_outputs()
    inputs: list[ir.Value | None] = [x]
    attrs: dict[str, int] = {"axis": axis}
    if sizes:
        inputs.append(ctx.ints(sizes))
    else:
        attrs["num_outputs"] = count
    for i, value in enumerate(ctx.node("Split", inputs, attrs, num_outputs=count)):
        ctx.output(i, value)


@ops.register("Flatten", since=1, domain=DOMAIN)
def flatten(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("Flatten", [ctx.input(0)], {"axis": args.integer("axis", 1)}))


@ops.register("FlattenToVec", since=1, domain=DOMAIN)
def flatten_to_vec(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("Reshape", [ctx.input(0), ctx.ints([-1])]))


@ops.register("Transpose", since=1, domain=DOMAIN)
def transpose(op: Op, args: Args, ctx: ImportContext) -> None:
    axes = args.integers("axes")
    attrs = {"perm": axes} if axes else {}
    ctx.output(0, ctx.op1("Transpose", [ctx.input(0)], attrs))


@ops.register("Squeeze", since=1, domain=DOMAIN)
def squeeze(op: Op, args: Args, ctx: ImportContext) -> None:
    dims = args.integers("dims") or []
    inputs: list[ir.Value | None] = [ctx.input(0)]
    if dims:
        inputs.append(ctx.ints(dims))
    ctx.output(0, ctx.op1("Squeeze", inputs))


@ops.register("ExpandDims", since=1, domain=DOMAIN)
def expand_dims(op: Op, args: Args, ctx: ImportContext) -> None:
    dims = args.integers("dims") or []
    ctx.output(0, ctx.op1("Unsqueeze", [ctx.input(0), ctx.ints(dims)]))


@ops.register("Shape", since=1, domain=DOMAIN)
def shape(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    axes = args.integers("axes")
    full = ctx.op1("Shape", [x])
    if axes:
        full = ctx.op1("Gather", [full, ctx.ints(axes)], {"axis": 0})
    ctx.output(0, full)


@ops.register("Size", since=1, domain=DOMAIN)
def size(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("Size", [ctx.input(0)]))


@ops.register("Slice", since=1, domain=DOMAIN)
def slice_(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    starts, ends = args.integers("starts"), args.integers("ends")
    if len(op.input) >= 3:
        starts_c, ends_c = ctx.known_value(ctx.input(1)), ctx.known_value(ctx.input(2))
        if starts_c is None or ends_c is None:
            _runtime_slice(ctx, x)
            return
        starts, ends = [int(v) for v in starts_c.reshape(-1)], [int(v) for v in ends_c.reshape(-1)]
    if starts is None or ends is None:
        raise ctx.bad("Slice needs starts and ends")
    # Caffe2 counts a negative end from one past the last element: -1 means "to the end".
    big = np.iinfo(np.int64).max
    onnx_ends = [big if e == -1 else (e + 1 if e < 0 else e) for e in ends]
    axes = list(range(len(starts)))
    node_inputs: list[ir.Value | None] = [x, ctx.ints(starts), ctx.ints(onnx_ends), ctx.ints(axes)]
    ctx.output(0, ctx.op1("Slice", node_inputs))


def _runtime_slice(ctx: ImportContext, x: ir.Value) -> None:
    """Slice with run-time starts and ends (inputs 1 and 2), one per leading dim."""
    starts_shape = ctx.shape(ctx.input(1))
    count = starts_shape[0] if starts_shape else ctx.rank(x)
    dims = ctx.op1("Shape", [x], {"start": 0, "end": count})
    bounds = []
    for index in (1, 2):
        value = ctx.op1("Cast", [ctx.input(index)], {"to": ir.DataType.INT64})
        # Caffe2 counts a negative bound from dim + 1 (-1 is the end); ONNX from dim.
        negative = ctx.op1("Less", [value, ctx.ints([0])])
        shifted = ctx.op1("Add", [ctx.op1("Add", [value, dims]), ctx.ints([1])])
        bounds.append(ctx.op1("Where", [negative, shifted, value]))
    axes = ctx.ints(list(range(count)))
    ctx.output(0, ctx.op1("Slice", [x, bounds[0], bounds[1], axes]))


@ops.register("ResizeNearest", since=1, domain=DOMAIN)
def resize_nearest(op: Op, args: Args, ctx: ImportContext) -> None:
    if args.string("order", "NCHW").upper() != "NCHW":
        raise ctx.unsupported("ResizeNearest in NHWC order is not imported")
    scales = np.array(
        [1, 1, args.number("height_scale", 1.0), args.number("width_scale", 1.0)], np.float32
    )
    attrs = {
        "mode": "nearest",
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    }
    ctx.output(
        0, ctx.op1("Resize", [ctx.input(0), None, ctx.make_constant(scales, "scales")], attrs)
    )


@ops.register("UpsampleBilinear", since=1, domain=DOMAIN)
def upsample_bilinear(op: Op, args: Args, ctx: ImportContext) -> None:
    scales = np.array(
        [1, 1, args.number("height_scale", 1.0), args.number("width_scale", 1.0)], np.float32
    )
    attrs = {"mode": "linear", "coordinate_transformation_mode": "align_corners"}
    ctx.output(
        0, ctx.op1("Resize", [ctx.input(0), None, ctx.make_constant(scales, "scales")], attrs)
    )


@ops.register("PadImage", since=1, domain=DOMAIN)
def pad_image(op: Op, args: Args, ctx: ImportContext) -> None:
    if args.string("order", "NCHW").upper() != "NCHW":
        raise ctx.unsupported("PadImage in NHWC order is not imported")
    pad = args.integer("pad", 0)
    t, l, b, r = (args.integer(k, pad) for k in ("pad_t", "pad_l", "pad_b", "pad_r"))  # noqa: E741
    pads = args.integers("pads")
    if pads:
        t, l, b, r = pads  # noqa: E741
    mode = args.string("mode", "constant")
    value = ctx.make_constant(np.array(args.number("value", 0.0), dtype=np.float32), "value")
    inputs: list[ir.Value | None] = [ctx.input(0), ctx.ints([0, 0, t, l, 0, 0, b, r])]
    if mode == "constant":
        inputs.append(value)
    ctx.output(0, ctx.op1("Pad", inputs, {"mode": mode}))


@ops.register("Gather", since=1, domain=DOMAIN)
def gather(op: Op, args: Args, ctx: ImportContext) -> None:
    args.integer("wrap_indices", 0)
    attrs = {"axis": args.integer("axis", 0)}
    ctx.output(0, ctx.op1("Gather", [ctx.input(0), ctx.input(1)], attrs))


def _reduce(onnx_type: str):  # type: ignore[no-untyped-def]
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        axes = args.integers("axes")
        inputs: list[ir.Value | None] = [ctx.input(0)]
        if axes:
            inputs.append(ctx.ints(axes))
        attrs = {"keepdims": args.integer("keepdims", 1)}
        ctx.output(0, ctx.op1(onnx_type, inputs, attrs))

    convert.__name__ = convert.__qualname__ = onnx_type.lower()
    return convert


for _name in ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceL1", "ReduceL2"):
    ops.register(_name, since=1, domain=DOMAIN)(_reduce(_name))


@ops.register("ArgMax", since=1, domain=DOMAIN)
def arg_max(op: Op, args: Args, ctx: ImportContext) -> None:
    attrs = {"axis": args.integer("axis", -1), "keepdims": args.integer("keepdims", 1)}
    ctx.output(0, ctx.op1("ArgMax", [ctx.input(0)], attrs))


@ops.register("ArgMin", since=1, domain=DOMAIN)
def arg_min(op: Op, args: Args, ctx: ImportContext) -> None:
    attrs = {"axis": args.integer("axis", -1), "keepdims": args.integer("keepdims", 1)}
    ctx.output(0, ctx.op1("ArgMin", [ctx.input(0)], attrs))


@ops.register("TopK", since=1, domain=DOMAIN)
def top_k(op: Op, args: Args, ctx: ImportContext) -> None:
    k = ctx.ints([args.integer("k", -1)])
    outputs = ctx.node("TopK", [ctx.input(0), k], {"axis": args.integer("axis", -1)}, num_outputs=2)
    ctx.output(0, outputs[0])
    ctx.output(1, outputs[1])


@ops.register("Tile", since=1, domain=DOMAIN)
def tile(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    rank = ctx.rank(x)
    if len(op.input) == 1:
        repeats = [1] * rank
        repeats[args.integer("axis", 0) % rank] = args.integer("tiles", 1)
        ctx.output(0, ctx.op1("Tile", [x, ctx.ints(repeats)]))
        return
    # Tiles (input 1) and axis (input 2, else the argument) as tensors: the repeats are the
    # tiles at the axis and 1 elsewhere.
    tiles = ctx.op1("Reshape", [ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.INT64}),
                                ctx.ints([])])  # fmt: skip
    if len(op.input) > 2:
        axis = ctx.op1("Reshape", [ctx.op1("Cast", [ctx.input(2)], {"to": ir.DataType.INT64}),
                                   ctx.ints([])])  # fmt: skip
        wrapped = ctx.op1("Add", [axis, ctx.make_constant(np.array(rank, dtype=np.int64), "rank")])
        negative = ctx.op1("Less", [axis, ctx.make_constant(np.array(0, dtype=np.int64), "zero")])
        axis = ctx.op1("Where", [negative, wrapped, axis])
    else:
        axis = ctx.make_constant(np.array(args.integer("axis", 0) % rank, dtype=np.int64), "axis")
    here = ctx.op1("Equal", [ctx.ints(list(range(rank))), axis])
    counts = ctx.op1("Where", [here, tiles, ctx.ints([1] * rank)])
    ctx.output(0, ctx.op1("Tile", [x, counts]))


@ops.register("BooleanMask", since=1, domain=DOMAIN)
def boolean_mask(op: Op, args: Args, ctx: ImportContext) -> None:
    """The rows of input 0 where the 1-D mask is true; output 1 is their positions (int32)."""
    mask = ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.BOOL})
    ctx.output(0, ctx.op1("Compress", [ctx.input(0), mask], {"axis": 0}))
    if ctx.num_outputs() > 1:
        positions = ctx.op1("Reshape", [ctx.op1("NonZero", [mask]), ctx.ints([-1])])
        ctx.output(1, ctx.op1("Cast", [positions], {"to": ir.DataType.INT32}))


@ops.register("Expand", since=1, domain=DOMAIN)
def expand(op: Op, args: Args, ctx: ImportContext) -> None:
    shape = ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.INT64})
    ctx.output(0, ctx.op1("Expand", [ctx.input(0), shape]))


@ops.register("ConstantFill", since=1, domain=DOMAIN)
def constant_fill(op: Op, args: Args, ctx: ImportContext) -> None:
    dtype = IR_DTYPES.get(args.integer("dtype", caffe2_pb2.TensorProto.FLOAT), ir.DataType.FLOAT)
    value = ir.tensor(np.array([args.number("value", 0.0)]).astype(dtype.numpy()))
    args.integers("extra_shape")
    if op.input and args.integer("input_as_shape", 0):
        shape = ctx.op1("Cast", [ctx.input(0)], {"to": ir.DataType.INT64})
    elif op.input:
        shape = ctx.op1("Shape", [ctx.input(0)])
    else:
        shape = ctx.ints(args.integers("shape") or [])
    ctx.output(0, ctx.op1("ConstantOfShape", [shape], {"value": value}))


@ops.register("Range", since=1, domain=DOMAIN)
def range_(op: Op, args: Args, ctx: ImportContext) -> None:
    if len(op.input) != 3:
        raise ctx.unsupported("Range is imported with start, stop and step inputs only")
    ctx.output(0, ctx.op1("Range", [ctx.input(0), ctx.input(1), ctx.input(2)]))
