"""Resize and Upsample on MIL's image resizing ops.

MIL resizes the last two axes only, nearest by a scale factor (``upsample_nearest_neighbor``:
source index ``floor(i / scale)``) and bilinear to a target size (``resize_bilinear``, whose
sampling modes place the grid from ``input size / output size``). ONNX places its samples by a
coordinate transformation of its own scale, so each converter computes both grids for the
node's static sizes and emits the MIL op only where they agree; otherwise it refuses, naming
the mode, coordinate transformation and rounding it could not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops

#: MIL ``resize_bilinear`` sampling modes and each one's sample grid (output index, in, out).
_BILINEAR_GRIDS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "STRICT_ALIGN_CORNERS": lambda i, n_in, n_out: i * (n_in - 1) / max(n_out - 1, 1),
    "DEFAULT": lambda i, n_in, n_out: i * (n_in - n_in / n_out) / max(n_out - 1, 1),
    "UNALIGN_CORNERS": lambda i, n_in, n_out: (i + 0.5) * n_in / n_out - 0.5,
}


def _onnx_coordinates(
    mode: str, i: np.ndarray, scale: float, n_in: int, n_out: int
) -> np.ndarray | None:
    """ONNX's source coordinate of each output index (None for transformations not handled)."""
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(i)
    if mode == "align_corners":
        return i * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(i)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        return n_in / 2 * (1 - adjustment) + (i + 0.5) / scale - 0.5
    return None


def _round(nearest_mode: str, x: np.ndarray) -> np.ndarray:
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    ties = np.isclose(x - np.floor(x), 0.5, rtol=0, atol=1e-9)
    rounded = np.floor(x + 0.5)
    return np.where(
        ties, np.floor(x) if nearest_mode == "round_prefer_floor" else np.ceil(x), rounded
    )


def _sizes(
    ctx: ExportContext, scales: list[float] | None, sizes: list[int] | None
) -> tuple[list[int], list[float], list[int]]:
    """Input dims, ONNX's per-axis scales and output dims, from constant scales or sizes."""
    shape = ctx.input_shape(0)
    if shape is None or any(d is None for d in shape):
        raise ctx.error("an input of unknown size: Core ML's resize ops need the sizes when built")
    dims = [int(d) for d in shape]  # type: ignore[arg-type]
    rank = len(dims)
    axes = ctx.attr("axes", None)
    axes = [a % rank for a in axes] if axes else list(range(rank))
    full_scales = [1.0] * rank
    out = list(dims)
    if sizes is not None:
        policy = str(ctx.attr("keep_aspect_ratio_policy", "stretch"))
        ratios = [sizes[k] / dims[axis] for k, axis in enumerate(axes)]
        if policy == "stretch":
            for k, axis in enumerate(axes):
                full_scales[axis], out[axis] = ratios[k], int(sizes[k])
        else:
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for axis in axes:
                full_scales[axis] = common
                out[axis] = int(np.floor(dims[axis] * common + 0.5))
    elif scales is not None:
        for k, axis in enumerate(axes):
            full_scales[axis] = float(scales[k])
            out[axis] = int(np.floor(dims[axis] * float(scales[k])))
    else:
        raise ctx.error("scales and sizes both absent or computed at run time")
    return dims, full_scales, out


def _resize(
    ctx: ExportContext,
    mode: str,
    coordinates: str,
    nearest_mode: str,
    scales: list[float] | None,
    sizes: list[int] | None,
) -> list[Any]:
    require_float(ctx, ctx.node.op_type)
    dims, full_scales, out = _sizes(ctx, scales, sizes)
    rank = len(dims)
    if rank < 3:
        raise ctx.error(f"a rank-{rank} input: Core ML resizes the last two axes of rank 3 and up")
    if any(out[a] != dims[a] for a in range(rank - 2)):
        raise ctx.error("resizing an axis other than the last two: Core ML resizes only those")
    what = f"mode={mode}, coordinate_transformation_mode={coordinates}"
    if mode == "nearest":
        what += f", nearest_mode={nearest_mode}"
    grids = []
    for axis in (rank - 2, rank - 1):
        i = np.arange(out[axis], dtype=np.float64)
        x = _onnx_coordinates(coordinates, i, full_scales[axis], dims[axis], out[axis])
        if x is None:
            raise ctx.error(f"{what}: no Core ML resize op samples there")
        grids.append(x)
    mb = ctx.mb
    if mode == "nearest":
        held = [np.float32(full_scales[a]) for a in (rank - 2, rank - 1)]
        for k, axis in enumerate((rank - 2, rank - 1)):
            wanted = np.clip(_round(nearest_mode, grids[k]), 0, dims[axis] - 1)
            i = np.arange(out[axis], dtype=np.float64)
            mil = np.clip(np.floor(i / float(held[k])), 0, dims[axis] - 1)
            if int(np.floor(dims[axis] * float(held[k]))) != out[axis] or not np.array_equal(
                wanted, mil
            ):
                raise ctx.error(
                    f"{what} at scale {full_scales[axis]:g} on axis {axis}: Core ML's nearest "
                    "upsampling takes source pixel floor(i / scale), which differs here"
                )
        return [
            mb.upsample_nearest_neighbor(
                x=ctx.input(0), scale_factor_height=held[0], scale_factor_width=held[1]
            )
        ]
    if mode != "linear":
        raise ctx.error(f"mode={mode}: Core ML resizes nearest and bilinear only")
    for sampling, grid in _BILINEAR_GRIDS.items():
        if all(
            out[axis] > 1
            and np.allclose(
                np.clip(
                    grid(np.arange(out[axis], dtype=np.float64), dims[axis], out[axis]),
                    0,
                    dims[axis] - 1,
                ),
                np.clip(grids[k], 0, dims[axis] - 1),
                rtol=0,
                atol=1e-5,
            )
            for k, axis in enumerate((rank - 2, rank - 1))
        ):
            return [
                mb.resize_bilinear(
                    x=ctx.input(0),
                    target_size_height=out[rank - 2],
                    target_size_width=out[rank - 1],
                    sampling_mode=sampling,
                )
            ]
    raise ctx.error(f"{what} with these sizes: no Core ML bilinear sampling mode samples there")


def _floats(ctx: ExportContext, index: int) -> list[float] | None:
    array = ctx.constant_input(index) if ctx.has_input(index) else None
    if array is None or array.size == 0:
        return None
    return [float(v) for v in array.reshape(-1)]


def _checked_options(ctx: ExportContext) -> None:
    if int(ctx.attr("antialias", 0)):
        raise ctx.error("antialias=1: Core ML's resize ops do not filter")
    if ctx.has_input(2) and ctx.constant_input(2) is None:
        raise ctx.error("scales computed at run time")
    if ctx.has_input(3) and ctx.constant_input(3) is None:
        raise ctx.error("sizes computed at run time")


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    _checked_options(ctx)
    sizes = ctx.ints(3) if ctx.has_input(3) and ctx.constant_input(3) is not None else None
    if sizes is not None and not sizes:
        sizes = None
    return _resize(
        ctx,
        str(ctx.attr("mode", "nearest")),
        str(ctx.attr("coordinate_transformation_mode", "half_pixel")),
        str(ctx.attr("nearest_mode", "round_prefer_floor")),
        _floats(ctx, 2),
        sizes,
    )


@ops.register("Resize", since=10)
def resize_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Opset 10's Resize samples as Upsample does: asymmetric coordinates, nearest floors."""
    if ctx.has_input(1) and ctx.constant_input(1) is None:
        raise ctx.error("scales computed at run time")
    return _resize(
        ctx, str(ctx.attr("mode", "nearest")), "asymmetric", "floor", _floats(ctx, 1), None
    )


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.constant_input(1) is None:
        raise ctx.error("scales computed at run time")
    return _resize(
        ctx, str(ctx.attr("mode", "nearest")), "asymmetric", "floor", _floats(ctx, 1), None
    )


@ops.register("Upsample", since=7)
def upsample_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    scales = [float(s) for s in ctx.attr("scales")]
    return _resize(ctx, str(ctx.attr("mode", "nearest")), "asymmetric", "floor", scales, None)


_GRID_MODES = {"linear": "bilinear", "bilinear": "bilinear", "nearest": "nearest"}


@ops.register("GridSample", since=16)
def grid_sample_v16(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """MIL's resample, as coremltools maps torch's grid_sample (whose sampling ONNX's is): a
    reflection without align_corners reflects about the pixels' outer edges, MIL's symmetric."""
    require_float(ctx, "GridSample")
    if ctx.input_rank(0) != 4:
        raise ctx.error(f"a rank-{ctx.input_rank(0)} input: Core ML's resample samples 2-D images")
    mode = str(ctx.attr("mode", "bilinear"))
    if mode not in _GRID_MODES:
        raise ctx.error(f"mode={mode}: Core ML's resample samples bilinear or nearest")
    padding = str(ctx.attr("padding_mode", "zeros"))
    align_corners = bool(int(ctx.attr("align_corners", 0)))
    padding_mode = {"zeros": "constant", "border": "border", "reflection": "reflection"}.get(
        padding
    )
    if padding_mode is None:
        raise ctx.error(f"padding_mode={padding}")
    if padding_mode == "reflection" and not align_corners:
        padding_mode = "symmetric"
    return [
        ctx.mb.resample(
            x=ctx.input(0),
            coordinates=ctx.input(1),
            sampling_mode=_GRID_MODES[mode],
            padding_mode=padding_mode,
            padding_value=0.0,
            coordinates_mode="normalized_minus_one_to_one",
            align_corners=align_corners,
        )
    ]
