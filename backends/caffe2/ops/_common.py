"""Helpers shared by the converter modules."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import onnx.defs
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype

#: Integer types Caffe2's arithmetic, comparisons, Where and Expand have no kernel for: they take
#: int32, int64, float and double (elementwise_ops.h's NumericTypes, elementwise_ops.cc,
#: elementwise_logical_ops.h, expand_op.cc). Converters widen them to int64, where 8- and 16-bit
#: arithmetic cannot overflow, and cast results back, which wraps them as the narrow type would.
NARROW_INTEGERS = frozenset(
    {ir.DataType.INT8, ir.DataType.INT16, ir.DataType.UINT8, ir.DataType.UINT16}
)


def since(op_type: str, opset: int = 7) -> int:
    """The since_version of the schema ``op_type`` has at ``opset`` (or its first, if later)."""
    try:
        return int(onnx.defs.get_schema(op_type, opset).since_version)
    except onnx.defs.SchemaError:
        return _first_since_versions()[op_type]


@functools.cache
def _first_since_versions() -> dict[str, int]:
    # Once: every schema's history takes ~20 ms to read, and registering the converters asks for
    # several ops that came after opset 7 (issue #15: no fixed tax on every conversion).
    first: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain == "":
            version = int(schema.since_version)
            first[schema.name] = min(version, first.get(schema.name, version))
    return first


def attr_int(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return default if attr is None else int(attr.as_int())  # type: ignore[union-attr]


def attr_float(node: ir.Node, name: str, default: float) -> float:
    attr = node.attributes.get(name)
    return default if attr is None else float(attr.as_float())  # type: ignore[union-attr]


def attr_str(node: ir.Node, name: str, default: str) -> str:
    attr = node.attributes.get(name)
    return default if attr is None else str(attr.as_string())  # type: ignore[union-attr]


def attr_ints(node: ir.Node, name: str) -> list[int] | None:
    attr = node.attributes.get(name)
    return None if attr is None else [int(v) for v in attr.as_ints()]  # type: ignore[union-attr]


def attr_floats(node: ir.Node, name: str) -> list[float] | None:
    attr = node.attributes.get(name)
    return None if attr is None else [float(v) for v in attr.as_floats()]  # type: ignore[union-attr]


def out_shape(ctx: ExportContext, node: ir.Node, index: int = 0) -> tuple[int, ...] | None:
    """The static shape of an output, from the IR or by broadcasting the inputs' shapes."""
    shape = ctx.shape(node.outputs[index])
    if shape is not None:
        return shape
    shapes = [ctx.shape(v) for v in node.inputs if v is not None]
    if shapes and all(s is not None for s in shapes):
        return tuple(np.broadcast_shapes(*[s for s in shapes if s is not None]))
    return None


def expanded_inputs(
    ctx: ExportContext, node: ir.Node, indices: Sequence[int], *, widen: bool = False
) -> list[str]:
    """The inputs' blobs, each expanded to the output shape where its own shape differs; with
    ``widen``, 8- and 16-bit integers first cast to int64 (Caffe2's Expand and Where have no
    kernel for them).

    Caffe2's variadic and some binary operators want inputs of one shape; ONNX broadcasts.
    """
    target = out_shape(ctx, node)
    blobs = []
    for index in indices:
        value = node.inputs[index]
        blob = ctx.blob(value)
        if widen and ctx.dtype(value) in NARROW_INTEGERS:
            blob = cast(ctx, blob, ir.DataType.INT64)
        shape = ctx.shape(value)
        if shape != target:
            if target is None:
                raise ctx.error("needs static shapes to broadcast its inputs for Caffe2")
            shape_blob = ctx.make_constant(np.array(target, dtype=np.int64), "shape")
            blob = expand(ctx, blob, shape_blob, flag=ctx.dtype(value) == ir.DataType.BOOL)
        blobs.append(blob)
    return blobs


def expand(ctx: ExportContext, blob: str, shape: str, *, flag: bool = False) -> str:
    """Caffe2's Expand of ``blob`` to the int64 ``shape`` blob. Caffe2 registers Expand for
    int32, int64, float and double (expand_op.cc): a bool blob (``flag``) goes through int32."""
    if not flag:
        return ctx.temp("Expand", [blob, shape], "expand")
    as_int = ctx.temp("Cast", [blob], "flag", to=caffe2_dtype(ir.DataType.INT32))
    expanded = ctx.temp("Expand", [as_int, shape], "expand")
    return ctx.temp("Cast", [expanded], "flag", to=caffe2_dtype(ir.DataType.BOOL))


def cast(ctx: ExportContext, blob: str, dtype: ir.DataType) -> str:
    return ctx.temp("Cast", [blob], "cast", to=caffe2_dtype(dtype))


def normalize_axis(ctx: ExportContext, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def reshape(
    ctx: ExportContext, blob: str, shape: Sequence[int] | str, out: str | None = None
) -> str:
    """Caffe2's Reshape (it always writes the old shape as a second output)."""
    target = out or ctx.fresh("reshaped")
    old = ctx.fresh("old_shape")
    if isinstance(shape, str):
        ctx.emit("Reshape", [blob, shape], [target, old])
    else:
        ctx.emit("Reshape", [blob], [target, old], shape=[int(d) for d in shape])
    return target


def zeros_like(ctx: ExportContext, value: ir.Value) -> str:
    """A blob of zeros with ``value``'s shape and element type."""
    dtype = ctx.dtype(value) or ir.DataType.FLOAT
    fill = 0.0 if dtype.is_floating_point() else 0
    return ctx.temp(
        "ConstantFill", [ctx.blob(value)], "zeros", value=fill, dtype=caffe2_dtype(dtype)
    )


def required(ctx: ExportContext, node: ir.Node, index: int) -> ir.Value:
    """Input ``index`` of ``node``; ConversionError where it is missing."""
    value = node.inputs[index] if index < len(node.inputs) else None
    if value is None:
        raise ctx.error(f"input {index} is missing")
    return value


def expanded_blobs(
    ctx: ExportContext, node: ir.Node, blobs: list[str], flags: Sequence[bool] = ()
) -> list[str]:
    """``blobs`` (each of the output's shape or a broadcast of it) expanded to that shape;
    ``flags`` says which blobs are bool."""
    target = out_shape(ctx, node)
    if target is None:
        raise ctx.error("needs the output's static shape to broadcast for Caffe2")
    shape_blob = ctx.make_constant(np.array(target, dtype=np.int64), "shape")
    kinds = list(flags) + [False] * (len(blobs) - len(flags))
    return [expand(ctx, b, shape_blob, flag=f) for b, f in zip(blobs, kinds, strict=True)]


#: What 8- and 16-bit integers and bools are carried through an op Caffe2 lacks a kernel for:
#: int64 (or int32, or float) holds each of their values exactly.
_CARRIERS = (ir.DataType.INT64, ir.DataType.INT32, ir.DataType.FLOAT)


def carried(
    ctx: ExportContext,
    blob: str,
    dtype: ir.DataType | None,
    kernel: frozenset[ir.DataType],
    what: str,
) -> tuple[str, ir.DataType | None]:
    """``blob`` as a type of ``kernel`` (the element types Caffe2 registers the op for; ``what``
    names the op and its source) that holds its values exactly, and the type to cast the result
    back to (None where it is already of ``kernel``). Bools and 8- and 16-bit integers go
    through int64, int32 or float; any other type is refused when exporting."""
    if dtype is None or dtype in kernel:
        return blob, None
    if dtype == ir.DataType.BOOL or dtype in NARROW_INTEGERS:
        for carrier in _CARRIERS:
            if carrier in kernel:
                return cast(ctx, blob, carrier), dtype
    names = ", ".join(sorted(t.name for t in kernel))
    raise ctx.error(f"Caffe2 registers {what} for {names} only, not {dtype.name}")


def carried_back(ctx: ExportContext, blob: str, dtype: ir.DataType | None, out: str) -> None:
    """Writes ``blob`` to ``out``, cast back to ``dtype`` where ``carried`` widened it."""
    if dtype is None:
        ctx.emit("Copy", [blob], [out])
    else:
        ctx.emit("Cast", [blob], [out], to=caffe2_dtype(dtype))


#: Caffe2's NumericTypes: int32, int64, float and double (elementwise_ops.h).
NUMERIC = frozenset({ir.DataType.INT32, ir.DataType.INT64, ir.DataType.FLOAT, ir.DataType.DOUBLE})

#: ScatterAssignOp's data types (its runners in utility_ops.h): float, float16, uint8, int32, int64.
SCATTER_ASSIGN_TYPES = frozenset(
    {ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.UINT8, ir.DataType.INT32,
     ir.DataType.INT64}
)  # fmt: skip


def transpose(
    ctx: ExportContext, blob: str, perm: list[int], dtype: ir.DataType | None, out: str
) -> None:
    """Writes ``blob`` transposed by ``perm`` to ``out``. Caffe2's Transpose takes int32,
    int64, float and double (transpose_op.h): bools and 8/16-bit integers go through int32 or
    int64 and are cast back; other types are refused when exporting."""
    wide, back = carried(ctx, blob, dtype, NUMERIC, "Transpose (transpose_op.h)")
    if back is None:
        ctx.emit("Transpose", [wide], [out], axes=perm)
        return
    carried_back(ctx, ctx.temp("Transpose", [wide], "moved", axes=perm), back, out)
