"""What Resize's and Upsample's attributes say at each version, read once for every backend.

How an axis is resampled is each backend's own work; which coordinate mapping and nearest rounding
a version uses, and which attributes it has at all, is ONNX's and written here once:

* Resize 10 and Upsample 7/9 have no ``coordinate_transformation_mode``: they map coordinates
  asymmetrically and round nearest down (as onnxruntime does);
* Resize 11 reads ``coordinate_transformation_mode`` (default half_pixel) and ``nearest_mode``;
* Resize 18 adds ``axes`` and ``keep_aspect_ratio_policy``; before it every axis is stretched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unframe.shared_ir.conversion import ConverterContext

__all__ = ["ResizeOptions", "legacy_resize_options", "resize_axes_and_policy", "resize_options"]


@dataclass(frozen=True)
class ResizeOptions:
    """The attributes that shape the interpolation of one Resize/Upsample node."""

    mode: str = "nearest"
    coordinate: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_a: float = -0.75
    exclude_outside: bool = False
    extrapolation: float = 0.0
    antialias: bool = False


def _text(ctx: ConverterContext[Any], name: str, default: str) -> str:
    value = ctx.attr(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _options(ctx: ConverterContext[Any], coordinate: str, nearest_mode: str) -> ResizeOptions:
    return ResizeOptions(
        mode=_text(ctx, "mode", "nearest"),
        coordinate=coordinate,
        nearest_mode=nearest_mode,
        cubic_a=float(ctx.attr("cubic_coeff_a", -0.75)),
        exclude_outside=bool(ctx.attr("exclude_outside", 0)),
        extrapolation=float(ctx.attr("extrapolation_value", 0.0)),
        antialias=bool(ctx.attr("antialias", 0)),
    )


def legacy_resize_options(ctx: ConverterContext[Any]) -> ResizeOptions:
    """Resize 10, Upsample 7 and 9: asymmetric coordinates, nearest rounded down."""
    return _options(ctx, "asymmetric", "floor")


def resize_options(ctx: ConverterContext[Any]) -> ResizeOptions:
    """Resize 11 on: the coordinate mapping and nearest rounding the node names."""
    coordinate = _text(ctx, "coordinate_transformation_mode", "half_pixel")
    return _options(ctx, coordinate, _text(ctx, "nearest_mode", "round_prefer_floor"))


def resize_axes_and_policy(
    ctx: ConverterContext[Any], with_axes: bool
) -> tuple[list[int] | None, str]:
    """The axes a Resize resizes (None: every axis) and its keep_aspect_ratio_policy.

    ``with_axes`` is for Resize 18 on; before it neither attribute exists.
    """
    if not with_axes:
        return None, "stretch"
    axes = ctx.attr("axes", None)
    policy = _text(ctx, "keep_aspect_ratio_policy", "stretch")
    return ([int(a) for a in axes] if axes else None), policy
