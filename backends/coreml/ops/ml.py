"""ai.onnx.ml's Binarizer and ArrayFeatureExtractor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import is_float, scalar_like
from unframe.backends.coreml.registry import ops

ML_DOMAIN = "ai.onnx.ml"


@ops.register("Binarizer", since=1, domain=ML_DOMAIN)
def binarizer_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    mb, x = ctx.mb, ctx.input(0)
    threshold = float(ctx.attr("threshold", 0.0))
    # An integer is above t where it is above floor(t) (a cast to int would truncate -1.5 to -1).
    above = mb.greater(x=x, y=scalar_like(ctx, threshold if is_float(ctx) else np.floor(threshold)))
    return [mb.select(cond=above, a=scalar_like(ctx, 1), b=scalar_like(ctx, 0))]


@ops.register("ArrayFeatureExtractor", since=1, domain=ML_DOMAIN)
def array_feature_extractor_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """The indices (any shape, read flat) picked from the last axis; a 1-D x gives [1, k]."""
    mb, rank = ctx.mb, ctx.input_rank(0)
    indices = mb.reshape(x=ctx.input(1), shape=np.array([-1], np.int32))
    picked = mb.gather(x=ctx.input(0), indices=indices, axis=rank - 1)
    return [mb.expand_dims(x=picked, axes=[0]) if rank == 1 else picked]
