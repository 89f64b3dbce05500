"""Reductions: Reduce{Sum,Mean,Max,Min,L1,L2}, Reduce{Front,Back}{Sum,Mean,Max}, ArgMax, TopK."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from unframe.backends.caffe2.native.executor.registry import (
    NUMERIC_TYPES,
    KernelTypes,
    OpContext,
    caffe2_op,
    canonical_axis,
)

Reducer = Callable[[np.ndarray, tuple[int, ...], bool], Any]

# The element types of ReduceOp<TensorTypes<...>, CPUContext, ...Reducer> in reduce_ops.cc.
_REDUCER_TYPES = {
    "ReduceSum": KernelTypes.of("reduce_ops.cc", *NUMERIC_TYPES),
    "ReduceMean": KernelTypes.of("reduce_ops.cc", np.float32),
    "ReduceMax": KernelTypes.of("reduce_ops.cc", *NUMERIC_TYPES),
}
# ArgOp::RunOnDevice: DispatchHelper<TensorTypes<std::int32_t, std::int64_t, float, double>>.
_ARG = KernelTypes.of("arg_ops.h", *NUMERIC_TYPES)
# TopKOp<float, CPUContext>.
_TOP_K = KernelTypes.of("top_k.cc", np.float32)


def _reducer(name: str, function: Reducer) -> None:
    types = _REDUCER_TYPES.get(name)

    def run(ctx: OpContext) -> list[np.ndarray]:
        x = ctx.input(0)
        if types is not None:
            types.check(ctx, x)
        axes = ctx.arg_ints("axes")
        dims = (
            tuple(sorted({canonical_axis(ctx, a, x.ndim) for a in axes}))
            if axes
            else tuple(range(x.ndim))
        )
        keep = bool(ctx.arg_int("keepdims", 1))
        if x.size == 0 and name in ("ReduceMax", "ReduceMin"):
            raise ctx.error("cannot take the max or min of an empty tensor")
        return [np.asarray(function(x, dims, keep)).astype(x.dtype)]

    run.__name__ = name.lower()
    caffe2_op(name)(run)


_reducer("ReduceSum", lambda x, a, k: np.sum(x, axis=a, keepdims=k))
_reducer("ReduceMean", lambda x, a, k: np.mean(x, axis=a, keepdims=k, dtype=np.float64))
_reducer("ReduceMax", lambda x, a, k: np.max(x, axis=a, keepdims=k))
_reducer("ReduceMin", lambda x, a, k: np.min(x, axis=a, keepdims=k))
_reducer("ReduceL1", lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k))
_reducer(
    "ReduceL2",
    lambda x, a, k: np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=a, keepdims=k)),
)


# reduce_front_back_{sum_mean,max}_ops.h: Sum and Mean for int32, int64, float and double; Max
# for float only.
_FRONT_BACK_TYPES = {
    "Sum": KernelTypes.of("reduce_front_back_sum_mean_ops.h", *NUMERIC_TYPES),
    "Mean": KernelTypes.of("reduce_front_back_sum_mean_ops.h", *NUMERIC_TYPES),
    "Max": KernelTypes.of("reduce_front_back_max_ops.h", np.float32),
}


def _front_back(kind: str, front: bool) -> None:
    """Reduce{Front,Back}{Sum,Mean,Max}, as Caffe2's kernels compute them.

    The input is a table: the reduced dims by the kept ones (front), or the kept by the reduced
    (back). Each kept position reduces its first ``lengths[k]`` values (all without ``lengths``),
    the loop always starting from the first one (so a length of 0 still reads it); Mean divides by
    the length. An empty table gives zeros.
    """

    def run(ctx: OpContext) -> list[np.ndarray]:
        x = ctx.input(0)
        _FRONT_BACK_TYPES[kind].check(ctx, x)
        count = ctx.arg_int("num_reduce_dim", 1)
        if not 0 <= count <= x.ndim:
            raise ctx.error(f"num_reduce_dim {count} is out of range for a {x.ndim}-D input")
        split = count if front else x.ndim - count
        kept_shape = x.shape[split:] if front else x.shape[:split]
        reduced = math.prod(x.shape[:count]) if front else math.prod(x.shape[split:])
        kept = math.prod(kept_shape)
        if reduced == 0 or kept == 0:
            return [np.zeros(kept_shape, dtype=x.dtype)]
        table = x.reshape(reduced, kept).T if front else x.reshape(kept, reduced)
        lengths = np.full(kept, reduced, dtype=np.int64)
        if ctx.num_inputs > 1:
            given = ctx.input(1)
            if given.dtype != np.int32:
                raise ctx.error(f"lengths must be int32 (Caffe2 reads them so), got {given.dtype}")
            if count != 1:
                raise ctx.error("given lengths, num_reduce_dim must be 1")
            if given.size != kept:
                raise ctx.error(f"{given.size} lengths for {kept} positions")
            lengths = given.reshape(-1).astype(np.int64)
        if ((lengths < 0) | (lengths > reduced)).any():
            raise ctx.error(f"a length is outside [0, {reduced}]")
        out = np.empty(kept, dtype=x.dtype)
        for position, length in enumerate(lengths):
            values = table[position, : max(int(length), 1)]
            if kind == "Max":
                out[position] = values.max()
            elif kind == "Sum":
                out[position] = values.sum(dtype=x.dtype)
            elif np.issubdtype(x.dtype, np.integer):  # C++ integer division truncates
                if not length:
                    raise ctx.error("an integer mean over a length of 0 divides by zero")
                total = int(values.sum(dtype=x.dtype))
                quotient = abs(total) // int(length)
                out[position] = quotient if total >= 0 else -quotient
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[position] = values.sum(dtype=x.dtype) / x.dtype.type(length)
        return [out.reshape(kept_shape)]

    name = f"Reduce{'Front' if front else 'Back'}{kind}"
    run.__name__ = name.lower()
    caffe2_op(name)(run)


for _front in (True, False):
    for _kind in ("Sum", "Mean", "Max"):
        _front_back(_kind, _front)


def _arg_extreme(ctx: OpContext, function: Callable[..., np.ndarray]) -> list[np.ndarray]:
    x = ctx.input(0)
    _ARG.check(ctx, x)
    axis = canonical_axis(ctx, ctx.arg_int("axis", -1), x.ndim)
    if x.shape[axis] == 0:
        raise ctx.error(f"dimension {axis} is empty")
    index = function(x, axis=axis)  # the first occurrence on ties, as Caffe2
    if ctx.arg_int("keepdims", 1):
        index = np.expand_dims(index, axis)
    return [np.asarray(index, dtype=np.int64)]


@caffe2_op("ArgMax")
def arg_max(ctx: OpContext) -> list[np.ndarray]:
    return _arg_extreme(ctx, np.argmax)


@caffe2_op("ArgMin")
def arg_min(ctx: OpContext) -> list[np.ndarray]:
    return _arg_extreme(ctx, np.argmin)


@caffe2_op("TopK")
def top_k(ctx: OpContext) -> list[np.ndarray]:
    """The k largest values along ``axis`` (default -1), largest first, and their int64 indices.

    Equal values keep their input order. Output 2, where asked for, is the flattened indices.
    """
    x = ctx.input(0)
    _TOP_K.check(ctx, x)
    k = ctx.arg_int("k", -1)
    axis = canonical_axis(ctx, ctx.arg_int("axis", -1), x.ndim)
    if not 1 <= k <= x.shape[axis]:
        raise ctx.error(f"k must be in [1, {x.shape[axis]}], got {k}")
    moved = np.moveaxis(x, axis, -1)
    order = np.argsort(-moved.astype(np.float64), axis=-1, kind="stable")[..., :k]
    values = np.take_along_axis(moved, order, axis=-1)
    outputs = [np.moveaxis(values, -1, axis).copy(), np.moveaxis(order, -1, axis).astype(np.int64)]
    if ctx.num_outputs > 2:
        # The position of each chosen value in the flattened input.
        coords = list(np.indices(order.shape))
        others = [d for d in range(x.ndim) if d != axis]
        index: list[Any] = [None] * x.ndim
        for position, d in enumerate(others):
            index[d] = coords[position]
        index[axis] = order
        flat = np.ravel_multi_index(tuple(index), x.shape)
        outputs.append(np.moveaxis(flat, -1, axis).reshape(-1).astype(np.int64))
    return outputs
