"""Import converters by op family; importing this package registers them all."""

from unframe.frontends.caffe2.ops import math, nn, tensor

__all__ = ["math", "nn", "tensor"]
