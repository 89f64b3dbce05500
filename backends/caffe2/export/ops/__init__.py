"""Converters by op family; importing this package registers them all."""

from unframe.backends.caffe2.export.ops import (
    composite,
    control_flow,
    elementwise,
    generators,
    indexing,
    loss,
    nn,
    quantize,
    recurrent,
    reduce,
    resize,
    tensor,
    training,
)

__all__ = [
    "composite", "control_flow", "elementwise", "generators", "indexing", "loss", "nn",
    "quantize", "recurrent", "reduce", "resize", "tensor", "training",
]  # fmt: skip
