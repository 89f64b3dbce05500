"""Import converters by op family; importing this package registers them all."""

from unframe.frontends.caffe2.ops import (
    aliases,
    control_flow,
    fill,
    indexing,
    math,
    nn,
    reduce,
    tensor,
)

__all__ = ["aliases", "control_flow", "fill", "indexing", "math", "nn", "reduce", "tensor"]
