"""Converters by op family; importing this package registers them all."""

from unframe.backends.caffe2.export.ops import elementwise, nn, reduce, tensor

__all__ = ["elementwise", "nn", "reduce", "tensor"]
