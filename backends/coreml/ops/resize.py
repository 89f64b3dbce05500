"""Resize and Upsample: MIL's image resizing ops where they sample as ONNX does, else gathers.

MIL resizes the last two axes only, nearest by a scale factor (``upsample_nearest_neighbor``:
source index ``floor(i / scale)``) and bilinear to a target size (``resize_bilinear``, whose
sampling modes place the grid from ``input size / output size``). ONNX places its samples by a
coordinate transformation of its own scale, so with constant scales or sizes each converter
computes both grids for the node's static sizes and emits the MIL op only where they agree.
Everything else (cubic, antialiasing, tf_crop_and_resize, other axes, roundings MIL's grid
does not make, scales, sizes or a region given at run time) is resampled axis by axis with
gathers and weighted sums that follow ONNX's reference step by step (``_resampling``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.native.reading import mil_type_name
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.ops._resampling import AxisResize, Sampling, resample
from unframe.backends.coreml.registry import ops
from unframe.shared_ir.errors import ConversionError

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
    ctx: ExportContext, scales: list[float] | None, sizes: list[int | None] | None
) -> tuple[list[int | None], list[float], list[int | None]]:
    """Input dims, ONNX's per-axis scales and output dims, from constant scales or sizes (a
    size of None: an axis the declared output keeps as it is). Dims unknown before run time
    (None) are allowed on the axes left as they are."""
    shape = ctx.input_shape(0)
    if shape is None:
        raise ctx.error("an input of unknown rank")
    dims: list[int | None] = [None if d is None else int(d) for d in shape]
    rank = len(dims)
    axes = ctx.attr("axes", None)
    axes = [a % rank for a in axes] if axes else list(range(rank))
    full_scales = [1.0] * rank
    out = list(dims)

    def known(axis: int) -> int:
        dim = dims[axis]
        if dim is None:
            raise ctx.error(
                f"axis {axis} resized from a size unknown when built: Core ML's resize ops "
                "need the sizes of the axes they resize"
            )
        return dim

    policy = str(ctx.attr("keep_aspect_ratio_policy", "stretch"))
    if sizes is not None and policy == "stretch":
        for k, axis in enumerate(axes):
            size = sizes[k]
            if size is not None:
                full_scales[axis], out[axis] = size / known(axis), int(size)
    elif sizes is not None:
        ratios = [int(sizes[k] or 0) / known(axis) for k, axis in enumerate(axes)]
        common = min(ratios) if policy == "not_larger" else max(ratios)
        for axis in axes:
            full_scales[axis] = common
            out[axis] = int(np.floor(known(axis) * common + 0.5))
    elif scales is not None:
        for k, axis in enumerate(axes):
            full_scales[axis] = float(scales[k])
            if float(scales[k]) != 1.0:
                out[axis] = int(np.floor(known(axis) * float(scales[k])))
    else:
        raise ctx.error("scales and sizes both absent or computed at run time")
    return dims, full_scales, out


def _declared_sizes(ctx: ExportContext) -> list[int | None] | None:
    """Sizes given at run time as the declared output shape has them (None for an axis the
    output keeps as the input has it, by the same symbolic dim); None where unknown."""
    x, y = ctx.node.inputs[0], ctx.node.outputs[0]
    if x is None or x.shape is None or y.shape is None or len(x.shape) != len(y.shape):
        return None
    rank = len(x.shape)
    axes = ctx.attr("axes", None)
    axes = [a % rank for a in axes] if axes else list(range(rank))
    found: list[int | None] = []
    for axis in axes:
        dim_in, dim_out = x.shape[axis], y.shape[axis]
        if isinstance(dim_out, int) and not (isinstance(dim_in, int) and dim_in == dim_out):
            found.append(dim_out)
        elif dim_in == dim_out and dim_in is not None and str(dim_in) != "None":
            found.append(None)
        else:
            return None
    return found


def _resize(
    ctx: ExportContext,
    mode: str,
    coordinates: str,
    nearest_mode: str,
    scales: list[float] | None,
    sizes: list[int | None] | None,
) -> list[Any]:
    require_float(ctx, ctx.node.op_type)
    known_dims, full_scales, known_out = _sizes(ctx, scales, sizes)
    rank = len(known_dims)
    if rank < 3:
        raise ctx.error(f"a rank-{rank} input: Core ML resizes the last two axes of rank 3 and up")
    if any(known_dims[a] is None or known_out[a] is None for a in (rank - 2, rank - 1)):
        raise ctx.error("the last two axes' sizes unknown when built")
    dims = [0 if d is None else d for d in known_dims]  # the unknown ones are left as they are
    out = [0 if d is None else d for d in known_out]
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


def _given(ctx: ExportContext, index: int) -> bool:
    """Whether input ``index`` is there and not an empty tensor (ONNX's way to leave it out)."""
    if not ctx.has_input(index):
        return False
    constant = ctx.constant_input(index)
    if constant is not None:
        return constant.size > 0
    shape = ctx.input_shape(index)
    return shape is None or shape != (0,)


def _entry(ctx: ExportContext, index: int, k: int) -> Any:
    """Entry ``k`` of 1-D input ``index`` as float32: a constant where known, else a (1,) var."""
    array = ctx.constant_input(index)
    if array is not None:
        return np.asarray([array.reshape(-1)[k]], np.float32)
    entry = ctx.mb.gather(x=ctx.input(index), indices=np.array([k], np.int32), axis=0)
    return entry if mil_type_name(entry.dtype) == "fp32" else ctx.mb.cast(x=entry, dtype="fp32")


def _resize_by_gathers(
    ctx: ExportContext, sampling: Sampling, scales_index: int, sizes_index: int, roi_index: int
) -> list[Any]:
    """Any Resize whose resized axes' sizes are known when built (``_resampling``); an axis
    of a size unknown until run time may only be left as it is."""
    if sampling.mode != "nearest":
        require_float(ctx, ctx.node.op_type)
    shape = ctx.input_shape(0)
    if shape is None:
        raise ctx.error("an input of unknown rank")
    rank = len(shape)
    axes_attr = ctx.attr("axes", None)
    axes = [a % rank for a in axes_attr] if axes_attr else list(range(rank))
    has_scales = scales_index >= 0 and _given(ctx, scales_index)
    has_sizes = sizes_index >= 0 and _given(ctx, sizes_index)
    if not has_scales and not has_sizes:
        raise ctx.error("neither scales nor sizes given")
    policy = str(ctx.attr("keep_aspect_ratio_policy", "stretch"))
    constant_scales = _floats(ctx, scales_index) if has_scales else None
    found = ctx.ints(sizes_index) if has_sizes else None
    constant_sizes: list[int | None] | None = None if found is None else list(found)
    declared_sizes = _declared_sizes(ctx) if has_sizes and policy == "stretch" else None
    kept = {a for a in range(rank) if a not in axes}
    for k, axis in enumerate(axes if sampling.coordinates != "tf_crop_and_resize" else []):
        if constant_scales is not None and constant_scales[k] == 1.0:
            kept.add(axis)
        elif declared_sizes is not None and declared_sizes[k] is None:
            kept.add(axis)  # the declared output keeps the input's own (symbolic) dim
    if any(shape[a] is None and a not in kept for a in range(rank)):
        raise ctx.error(
            "an axis of a size unknown when built is resized: Core ML's resizes need the sizes "
            "of the axes they resize"
        )
    dims = [0 if d is None else int(d) for d in shape]  # the unknown ones are kept, never read
    if constant_scales is not None or constant_sizes is not None:
        out = [0 if d is None else d for d in _sizes(ctx, constant_scales, constant_sizes)[2]]
    else:
        declared = ctx.node.outputs[0].shape
        if declared is None or any(
            not isinstance(declared[a], int) for a in range(rank) if a not in kept
        ):
            raise ctx.error(
                "scales or sizes computed at run time and an output shape not declared: Core ML "
                "needs the output size when the program is built"
            )
        out = [d if isinstance(d, int) else 0 for d in declared]
    scales: list[Any] = []
    if has_scales:
        scales = [_entry(ctx, scales_index, k) for k in range(len(axes))]
    else:
        mb = ctx.mb
        ratios = [
            None
            if axis in kept
            else mb.real_div(x=_entry(ctx, sizes_index, k), y=np.float32(dims[axis]))
            for k, axis in enumerate(axes)
        ]
        if policy != "stretch":
            stacked = mb.concat(values=ratios, axis=0)
            reduce = mb.reduce_min if policy == "not_larger" else mb.reduce_max
            common = reduce(x=stacked, axes=[0], keep_dims=True)
            ratios = [common] * len(axes)
        scales = ratios
    crop = sampling.coordinates == "tf_crop_and_resize"
    plans = []
    for k, axis in enumerate(axes):
        if axis in kept:
            continue  # left as it is (scale 1, no region of interest)
        scale = scales[k]
        known = getattr(scale, "val", scale)
        roi: tuple[Any, Any] = (0.0, 1.0)
        if crop:
            if not _given(ctx, roi_index):
                raise ctx.error("coordinate_transformation_mode=tf_crop_and_resize without roi")
            roi = (_entry(ctx, roi_index, k), _entry(ctx, roi_index, len(axes) + k))
        roi_known = [getattr(v, "val", v) for v in roi]
        if (
            known is not None
            and math.isclose(float(np.asarray(known).reshape(-1)[0]), 1.0)
            and out[axis] == dims[axis]
            and (
                not crop
                or (
                    all(v is not None for v in roi_known)
                    and math.isclose(float(np.asarray(roi_known[0]).reshape(-1)[0]), 0.0)
                    and math.isclose(float(np.asarray(roi_known[1]).reshape(-1)[0]), 1.0)
                )
            )
        ):
            continue  # the identity on this axis, which the reference skips too
        smallest = (
            float(np.asarray(known).reshape(-1)[0])
            if known is not None
            else max(out[axis] - 0.5, 0.5) / dims[axis]
        )
        plans.append(AxisResize(axis, dims[axis], out[axis], scale, smallest, roi))
    return [resample(ctx, ctx.input(0), plans, sampling)]


def _sampling(ctx: ExportContext, coordinates: str, nearest_mode: str) -> Sampling:
    mode = str(ctx.attr("mode", "nearest"))
    return Sampling(
        mode="linear" if mode == "bilinear" else mode,
        coordinates=coordinates,
        nearest_mode=nearest_mode,
        cubic_a=float(ctx.attr("cubic_coeff_a", -0.75)),
        exclude_outside=bool(int(ctx.attr("exclude_outside", 0))),
        antialias=bool(int(ctx.attr("antialias", 0))),
        extrapolation=float(ctx.attr("extrapolation_value", 0.0)),
    )


def _on_mil_resize_or_gathers(
    ctx: ExportContext, sampling: Sampling, scales_index: int, sizes_index: int, roi_index: int
) -> list[Any]:
    """MIL's own resize op where it samples exactly where ONNX does, else gathers."""
    scales = _floats(ctx, scales_index) if scales_index >= 0 else None
    sizes: list[int | None] | None = None
    if sizes_index >= 0 and _given(ctx, sizes_index):
        sizes = list(ctx.ints(sizes_index) or []) or None
        if sizes is None and str(ctx.attr("keep_aspect_ratio_policy", "stretch")) == "stretch":
            sizes = _declared_sizes(ctx)  # at run time, but the declared output has them
    on_mil = (
        (scales is not None or sizes is not None)
        and not sampling.antialias
        and sampling.mode in ("nearest", "linear")
    )
    if on_mil:
        try:
            return _resize(
                ctx,
                sampling.mode,
                sampling.coordinates,
                sampling.nearest_mode,
                scales,
                sizes or None,
            )
        except ConversionError:
            pass  # no MIL resize op samples there: gathers do (nothing was built yet)
    return _resize_by_gathers(ctx, sampling, scales_index, sizes_index, roi_index)


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    sampling = _sampling(
        ctx,
        str(ctx.attr("coordinate_transformation_mode", "half_pixel")),
        str(ctx.attr("nearest_mode", "round_prefer_floor")),
    )
    return _on_mil_resize_or_gathers(ctx, sampling, 2, 3, 1)


@ops.register("Resize", since=10)
def resize_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Opset 10's Resize samples as Upsample does: asymmetric coordinates, nearest floors."""
    return _on_mil_resize_or_gathers(ctx, _sampling(ctx, "asymmetric", "floor"), 1, -1, -1)


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _on_mil_resize_or_gathers(ctx, _sampling(ctx, "asymmetric", "floor"), 1, -1, -1)


@ops.register("Upsample", since=7)
def upsample_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    scales = [float(s) for s in ctx.attr("scales")]
    sampling = _sampling(ctx, "asymmetric", "floor")
    try:
        return _resize(ctx, sampling.mode, "asymmetric", "floor", scales, None)
    except ConversionError:
        pass
    shape = ctx.input_shape(0)
    if shape is None or any(d is None for d in shape):
        raise ctx.error("an input of unknown size: Core ML's resize ops need the sizes when built")
    dims = [int(d) for d in shape]  # type: ignore[arg-type]
    plans = [
        AxisResize(axis, dims[axis], int(np.floor(dims[axis] * s)), np.array([s], np.float32), s)
        for axis, s in enumerate(scales)
        if s != 1.0
    ]
    return [resample(ctx, ctx.input(0), plans, sampling)]


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
