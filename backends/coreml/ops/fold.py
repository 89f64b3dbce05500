"""Ops that write values into an image by position: MaxUnpool and Col2Im."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.registry import ops


def _zeros_like_input(ctx: ExportContext, shape: list[int]) -> Any:
    word = ctx.mil_dtype(ctx.input_dtype(0))
    numpy_type = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32}.get(word, np.bool_)
    return ctx.make_constant(np.zeros(shape, numpy_type))


def _static_shape(ctx: ExportContext, index: int, what: str) -> list[int]:
    shape = ctx.input_shape(index)
    if shape is None or any(d is None for d in shape):
        raise ctx.error(f"{what} of a shape unknown before run time")
    return [int(d or 0) for d in shape]


@ops.register("MaxUnpool", since=9)
def max_unpool_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """The values scattered to their flat indices in the unpooled shape (N, C and the pooled
    dims inferred from kernel, strides and pads), then zeros after them on each axis up to a
    larger ``output_shape``, as onnx's reference (and its node test) places them (onnxruntime
    reads the indices over ``output_shape`` instead)."""
    mb = ctx.mb
    dims = _static_shape(ctx, 0, "an input")
    spatial = len(dims) - 2
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides = [int(s) for s in ctx.attr("strides", None) or [1] * spatial]
    pads = [int(p) for p in ctx.attr("pads", None) or [0] * (2 * spatial)]
    inferred = dims[:2] + [
        (dims[2 + i] - 1) * strides[i] - (pads[i] + pads[spatial + i]) + kernel[i]
        for i in range(spatial)
    ]
    wanted = inferred
    if ctx.has_input(2):
        given = ctx.ints(2)
        shape = node.outputs[0].shape
        if given is None and shape is not None and all(isinstance(d, int) for d in shape):
            given = [int(d) for d in shape]  # type: ignore[arg-type]
        if given is None:
            raise ctx.error("output_shape computed at run time, and the output's shape unknown")
        wanted = given
    if len(wanted) != len(inferred) or any(w < i for w, i in zip(wanted, inferred, strict=True)):
        raise ctx.error(f"output_shape {wanted} smaller than the unpooled shape {inferred}")
    flat = [-1]
    values = mb.reshape(x=ctx.input(0), shape=flat)
    indices = mb.reshape(x=ctx.input(1), shape=flat)
    unpooled = mb.scatter_along_axis(
        data=_zeros_like_input(ctx, [math.prod(inferred)]),
        indices=indices,
        updates=values,
        axis=0,
        mode="update",
    )
    unpooled = mb.reshape(x=unpooled, shape=inferred)
    if wanted == inferred:
        return [unpooled]
    after = [0] * (2 * len(wanted))
    for axis, (w, i) in enumerate(zip(wanted, inferred, strict=True)):
        after[2 * axis + 1] = w - i
    fill = _zeros_like_input(ctx, []).val  # in x's type, as MIL's type check wants
    return [mb.pad(x=unpooled, pad=after, constant_val=fill)]


@ops.register("Col2Im", since=18)
def col2im_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Each column entry added into the image position its block and offset reach.

    Entry ``(n, c * K + k, l)`` (K the block's size) sits at block offset ``k`` and block
    position ``l``, both unravelled over the block's dims and the count of blocks per dim, and
    lands at ``l_i * stride_i - pad_i + k_i * dilation_i`` on each spatial axis; entries landing
    in the padding add into one spare slot, dropped after a scatter-add. The block's dims may be
    known only at run time: the image's dims come from the output's declared shape then.
    """
    mb = ctx.mb
    n, channels_blocks, count = _static_shape(ctx, 0, "an input")
    image = ctx.ints(1)
    if image is None:
        shape = node.outputs[0].shape
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise ctx.error("image_shape computed at run time, and the output's shape unknown")
        image = [int(d) for d in list(shape)[2:]]  # type: ignore[arg-type]
        channels = int(list(shape)[1])  # type: ignore[arg-type]
    else:
        channels = -1
    spatial = len(image)
    known_block = ctx.ints(2)
    if known_block is not None:
        channels = channels_blocks // math.prod(known_block)
    if channels <= 0 or channels_blocks % channels:
        raise ctx.error("the channel count is unknown before run time")
    block_size = channels_blocks // channels
    dilations = [int(d) for d in ctx.attr("dilations", None) or [1] * spatial]
    strides = [int(d) for d in ctx.attr("strides", None) or [1] * spatial]
    pads = [int(d) for d in ctx.attr("pads", None) or [0] * (2 * spatial)]
    block = (
        mb.cast(x=ctx.input(2), dtype="int32")
        if ctx.mil_dtype(ctx.input_dtype(2)) != "int32"
        else ctx.input(2)
    )
    blocks = [mb.gather(x=block, indices=np.int32(i), axis=0) for i in range(spatial)]
    # Entry positions: k along axis 1 of [C, K, L], l along axis 2.
    offset = np.arange(block_size, dtype=np.int32).reshape(1, block_size, 1)
    position = np.arange(count, dtype=np.int32).reshape(1, 1, count)
    target: Any = np.zeros((1, 1, 1), np.int32)
    inside: Any = None
    image_stride = 1  # of the axis at hand, in the flat image (the last axis first)
    for axis in reversed(range(spatial)):
        size = image[axis]
        blocks_along = mb.add(
            x=mb.floor_div(
                x=mb.sub(
                    x=np.int32(size + pads[axis] + pads[spatial + axis] - 1),
                    y=mb.mul(x=np.int32(dilations[axis]), y=mb.sub(x=blocks[axis], y=np.int32(1))),
                ),
                y=np.int32(strides[axis]),
            ),
            y=np.int32(1),
        )
        k_axis = mb.mod(x=offset, y=blocks[axis])
        offset = mb.floor_div(x=offset, y=blocks[axis])
        l_axis = mb.mod(x=position, y=blocks_along)
        position = mb.floor_div(x=position, y=blocks_along)
        landed = mb.add(
            x=mb.sub(x=mb.mul(x=l_axis, y=np.int32(strides[axis])), y=np.int32(pads[axis])),
            y=mb.mul(x=k_axis, y=np.int32(dilations[axis])),
        )
        within = mb.logical_and(
            x=mb.greater_equal(x=landed, y=np.int32(0)), y=mb.less(x=landed, y=np.int32(size))
        )
        inside = within if inside is None else mb.logical_and(x=inside, y=within)
        target = mb.add(x=target, y=mb.mul(x=landed, y=np.int32(image_stride)))
        image_stride *= size
    channel_base = np.arange(channels, dtype=np.int32).reshape(channels, 1, 1) * math.prod(image)
    target = mb.add(x=target, y=channel_base)
    spare = channels * math.prod(image)
    target = mb.select(cond=inside, a=target, b=np.int32(spare))
    target = mb.reshape(
        x=mb.add(x=target, y=np.zeros((channels, block_size, count), np.int32)), shape=[1, -1]
    )
    indices = mb.tile(x=target, reps=[n, 1])
    updates = mb.reshape(x=ctx.input(0), shape=[n, -1])
    summed = mb.scatter_along_axis(
        data=_zeros_like_input(ctx, [n, spare + 1]),
        indices=indices,
        updates=updates,
        axis=1,
        mode="add",
    )
    summed = mb.slice_by_index(x=summed, begin=[0, 0], end=[n, spare])
    return [mb.reshape(x=summed, shape=[n, channels, *image])]
