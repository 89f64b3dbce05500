"""MIL tensor ops: reshaping, transposing, slicing, joining, gathering, padding, filling."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.native.reading import numpy_dtype
from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, MIL_DOMAIN, ops

_INT_MAX = np.iinfo(np.int64).max
_INT_MIN = np.iinfo(np.int64).min


def _as_int64(ctx: MilContext, name: str) -> ir.Value:
    """Input ``name`` as an int64 tensor: a constant where known, else a Cast."""
    known = ctx.const(name)
    if known is not None:
        return ctx.make_constant(np.asarray(known, dtype=np.int64), name)
    return ctx.op1("Cast", [ctx.value(name)], {"to": ir.DataType.INT64})


@ops.register("reshape", since=IOS15, domain=MIL_DOMAIN)
def reshape(op: Any, ctx: MilContext) -> ir.Value:
    """The output's static shape where MIL knows it; else the shape (0 copies, as ONNX's)."""
    static = ctx.static_out_shape()
    shape = ctx.ints(static) if static is not None else _as_int64(ctx, "shape")
    return ctx.op1("Reshape", [ctx.value("x"), shape])


@ops.register("transpose", since=IOS15, domain=MIL_DOMAIN)
def transpose(op: Any, ctx: MilContext) -> ir.Value:
    rank = ctx.rank("x")
    perm = [int(p) % rank for p in ctx.attr("perm")]
    return ctx.op1("Transpose", [ctx.value("x")], {"perm": perm})


@ops.register("flatten2d", since=IOS15, domain=MIL_DOMAIN)
def flatten2d(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Flatten", [ctx.value("x")], {"axis": int(ctx.attr("axis", 1))})


@ops.register("squeeze", since=IOS15, domain=MIL_DOMAIN)
def squeeze(op: Any, ctx: MilContext) -> ir.Value:
    axes = ctx.attr("axes", None)
    if axes is None:
        return ctx.op1("Squeeze", [ctx.value("x")])
    return ctx.op1("Squeeze", [ctx.value("x"), ctx.ints(list(np.atleast_1d(axes)))])


@ops.register("expand_dims", since=IOS15, domain=MIL_DOMAIN)
def expand_dims(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Unsqueeze", [ctx.value("x"), ctx.ints(list(np.atleast_1d(ctx.attr("axes"))))])


@ops.register("concat", since=IOS15, domain=MIL_DOMAIN)
def concat(op: Any, ctx: MilContext) -> ir.Value:
    if ctx.attr("interleave", False):
        raise ctx.error("interleaved concat is not converted")
    found = ctx.var("values")
    items = found if isinstance(found, tuple | list) else (found,)
    values = ctx.values_of("values")
    if all(len(item.shape) == 0 for item in items):
        # MIL joins scalars into a vector (coremltools' shapes for fill); ONNX's Concat needs
        # rank 1 at least.
        values = [ctx.op1("Reshape", [value, ctx.ints([1])]) for value in values]
    return ctx.op1("Concat", values, {"axis": int(ctx.attr("axis"))})


@ops.register("stack", since=IOS15, domain=MIL_DOMAIN)
def stack(op: Any, ctx: MilContext) -> ir.Value:
    axis = int(ctx.attr("axis"))
    axes = ctx.ints([axis])
    expanded = [ctx.op1("Unsqueeze", [value, axes]) for value in ctx.values_of("values")]
    return ctx.op1("Concat", expanded, {"axis": axis})


@ops.register("split", since=IOS15, domain=MIL_DOMAIN)
def split(op: Any, ctx: MilContext) -> list[ir.Value]:
    """The pieces' sizes along the axis, as MIL typed them (num_splits or split_sizes)."""
    axis = int(ctx.attr("axis"))
    sizes = [out.shape[axis] for out in op.outputs]
    if not all(isinstance(s, int | np.integer) for s in sizes):
        raise ctx.error("needs the static size of every piece")
    return ctx.node("Split", [ctx.value("x"), ctx.ints(sizes)], {"axis": axis}, len(sizes))


@ops.register("slice_by_index", since=IOS15, domain=MIL_DOMAIN)
def slice_by_index(op: Any, ctx: MilContext) -> ir.Value:
    rank = ctx.rank("x")
    begin_known, end_known = ctx.const("begin"), ctx.const("end")
    stride = [int(s) for s in ctx.attr("stride", [1] * rank)]
    begin_mask = [bool(m) for m in ctx.attr("begin_mask", [False] * rank)]
    end_mask = [bool(m) for m in ctx.attr("end_mask", [False] * rank)]
    squeeze_mask = [bool(m) for m in ctx.attr("squeeze_mask", [False] * rank)]
    axes = ctx.ints(range(rank))
    steps = ctx.ints(stride)
    if begin_known is None or end_known is None:
        if any(begin_mask + end_mask + squeeze_mask):
            raise ctx.error("masks with begin or end known only at run time")
        return ctx.op1(
            "Slice", [ctx.value("x"), _as_int64(ctx, "begin"), _as_int64(ctx, "end"), axes, steps]
        )
    starts, ends = [int(b) for b in begin_known], [int(e) for e in end_known]
    for i in range(rank):
        forward = stride[i] > 0
        if begin_mask[i]:
            starts[i] = 0 if forward else _INT_MAX
        if end_mask[i]:
            ends[i] = _INT_MAX if forward else _INT_MIN
        if squeeze_mask[i]:
            # One element at ``begin``, stepping forwards whatever the stride.
            ends[i] = starts[i] + 1 if starts[i] != -1 else _INT_MAX
            stride[i] = 1
    sliced = ctx.op1(
        "Slice", [ctx.value("x"), ctx.ints(starts), ctx.ints(ends), axes, ctx.ints(stride)]
    )
    squeezed = [i for i in range(rank) if squeeze_mask[i]]
    if squeezed:
        return ctx.op1("Squeeze", [sliced, ctx.ints(squeezed)])
    return sliced


@ops.register("slice_by_size", since=IOS15, domain=MIL_DOMAIN)
def slice_by_size(op: Any, ctx: MilContext) -> ir.Value:
    begin = [int(b) for b in ctx.attr("begin")]
    size = [int(s) for s in ctx.attr("size")]
    ends = [_INT_MAX if s == -1 else b + s for b, s in zip(begin, size, strict=True)]
    inputs = [ctx.value("x"), ctx.ints(begin), ctx.ints(ends), ctx.ints(range(len(begin)))]
    return ctx.op1("Slice", inputs)


@ops.register("gather", since=IOS15, domain=MIL_DOMAIN)
def gather(op: Any, ctx: MilContext) -> ir.Value:
    if int(ctx.attr("batch_dims", 0)) != 0:
        raise ctx.error("gather with batch_dims is not converted")
    return ctx.op1(
        "Gather", [ctx.value("x"), ctx.value("indices")], {"axis": int(ctx.attr("axis", 0))}
    )


@ops.register("gather_along_axis", since=IOS15, domain=MIL_DOMAIN)
def gather_along_axis(op: Any, ctx: MilContext) -> ir.Value:
    inputs = [ctx.value("x"), ctx.value("indices")]
    return ctx.op1("GatherElements", inputs, {"axis": int(ctx.attr("axis", 0))})


@ops.register("tile", since=IOS15, domain=MIL_DOMAIN)
def tile(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Tile", [ctx.value("x"), _as_int64(ctx, "reps")])


@ops.register("pad", since=IOS15, domain=MIL_DOMAIN)
def pad(op: Any, ctx: MilContext) -> ir.Value:
    """MIL pads the last N axes with (begin, end) pairs; ONNX lists all begins, then all ends."""
    rank = ctx.rank("x")
    pairs = [int(p) for p in ctx.attr("pad")]
    lead = rank - len(pairs) // 2
    begins = [0] * lead + pairs[0::2]
    ends = [0] * lead + pairs[1::2]
    mode = str(ctx.attr("mode", "constant"))
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}.get(mode)
    if onnx_mode is None:
        raise ctx.error(f"pad mode {mode!r} is not converted")
    inputs = [ctx.value("x"), ctx.ints(begins + ends)]
    if onnx_mode == "constant":
        inputs.append(ctx.scalar(float(ctx.attr("constant_val", 0.0)), ctx.dtype("x")))
    return ctx.op1("Pad", inputs, {"mode": onnx_mode})


@ops.register("shape", since=IOS15, domain=MIL_DOMAIN)
def shape(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Cast", [ctx.op1("Shape", [ctx.value("x")])], {"to": ir.DataType.INT32})


@ops.register("fill", since=IOS15, domain=MIL_DOMAIN)
def fill(op: Any, ctx: MilContext) -> ir.Value:
    value = ctx.value("value") if ctx.has("value") else ctx.scalar(0.0)
    return ctx.op1("Expand", [value, _as_int64(ctx, "shape")])


@ops.register("range_1d", since=IOS15, domain=MIL_DOMAIN)
def range_1d(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Range", [ctx.value("start"), ctx.value("end"), ctx.value("step")])


@ops.register("cumsum", since=IOS15, domain=MIL_DOMAIN)
def cumsum(op: Any, ctx: MilContext) -> ir.Value:
    axis = ctx.make_constant(np.array(int(ctx.attr("axis", 0)), np.int64), "axis")
    attrs = {
        "exclusive": int(bool(ctx.attr("exclusive", False))),
        "reverse": int(bool(ctx.attr("reverse", False))),
    }
    return ctx.op1("CumSum", [ctx.value("x"), axis], attrs)


@ops.register("topk", since=IOS15, domain=MIL_DOMAIN)
def topk(op: Any, ctx: MilContext) -> list[ir.Value]:
    k = ctx.ints([int(ctx.attr("k", 1))])
    attrs = {"axis": int(ctx.attr("axis", -1)), "largest": int(not ctx.attr("ascending", False))}
    values, indices = ctx.node("TopK", [ctx.value("x"), k], attrs, num_outputs=2)
    return [values, ctx.op1("Cast", [indices], {"to": ir.DataType.INT32})]


@ops.register("depth_to_space", since=IOS15, domain=MIL_DOMAIN)
def depth_to_space(op: Any, ctx: MilContext) -> ir.Value:
    attrs = {"blocksize": int(ctx.attr("block_size")), "mode": "DCR"}
    return ctx.op1("DepthToSpace", [ctx.value("x")], attrs)


@ops.register("pixel_shuffle", since=IOS15, domain=MIL_DOMAIN)
def pixel_shuffle(op: Any, ctx: MilContext) -> ir.Value:
    attrs = {"blocksize": int(ctx.attr("upscale_factor")), "mode": "CRD"}
    return ctx.op1("DepthToSpace", [ctx.value("x")], attrs)


@ops.register("space_to_depth", since=IOS15, domain=MIL_DOMAIN)
def space_to_depth(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("SpaceToDepth", [ctx.value("x")], {"blocksize": int(ctx.attr("block_size"))})


@ops.register("reverse", since=IOS15, domain=MIL_DOMAIN)
def reverse(op: Any, ctx: MilContext) -> ir.Value:
    rank = ctx.rank("x")
    given = ctx.attr("axes", None)
    axes = [int(a) % rank for a in given] if given is not None else list(range(rank))
    inputs = [
        ctx.value("x"),
        ctx.ints([-1] * len(axes)),
        ctx.ints([_INT_MIN] * len(axes)),
        ctx.ints(axes),
        ctx.ints([-1] * len(axes)),
    ]
    return ctx.op1("Slice", inputs)


@ops.register("one_hot", since=IOS15, domain=MIL_DOMAIN)
def one_hot(op: Any, ctx: MilContext) -> ir.Value:
    """ONNX's OneHot (depth as a one-element tensor, values as [off, on] in the output type)."""
    dtype = numpy_dtype(op.outputs[0].dtype) or np.float32
    size = ctx.const("one_hot_vector_size")
    if size is None:
        size_value = ctx.op1("Reshape", [ctx.value("one_hot_vector_size"), ctx.ints([1])])
        depth = ctx.op1("Cast", [size_value], {"to": int(ir.DataType.INT64)})
    else:
        depth = ctx.make_constant(np.array([int(size)], np.int64), "depth")
    on = ctx.const("on_value") if ctx.has("on_value") else 1
    off = ctx.const("off_value") if ctx.has("off_value") else 0
    if on is None or off is None:
        raise ctx.error("on_value and off_value computed at run time")
    # onnxruntime's OneHot kernels take int64 indices and depth with float or int64 values.
    held = np.float32 if dtype == np.float32 else np.int64
    values = ctx.make_constant(np.array([off, on], held), "values")
    indices = ctx.op1("Cast", [ctx.value("indices")], {"to": int(ir.DataType.INT64)})
    hot = ctx.op1("OneHot", [indices, depth, values], {"axis": int(ctx.attr("axis", -1))})
    if held == dtype:
        return hot
    return ctx.op1("Cast", [hot], {"to": int(ir.DataType.from_numpy(np.dtype(dtype)))})
