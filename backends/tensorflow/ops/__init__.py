"""ONNX op converters for the TensorFlow backend, one module per op family.

Every public module here is imported by ``shared_ir.op_registry.load_op_modules``, so adding a
family is adding a file. A converter is registered at the ONNX schema's ``since_version`` and
named ``<op>_v<since>``; it returns one entry per ONNX output (see ``registry.Outputs``).

Layout: ``ctx.input(i)`` is input ``i`` in ONNX's layout. Converters that run channels-last
(Conv, pooling) read ``ctx.channels_last(i)`` and return ``Physical(tensor, channels_last(rank))``;
layout-agnostic ones (elementwise, BatchNormalization, Concat, Flatten of a 1x1 map...) read
``ctx.physical(i)`` and pass the layout on only where the result is provably the same.
"""

from __future__ import annotations

from unframe.shared_ir.op_registry import load_op_modules

load_op_modules(__name__)
