"""Caffe2 op types that are other names for ops imported elsewhere.

Conv1D/2D/3D, MaxPool1D/2D/3D and AveragePool1D/2D/3D register the same kernels as Conv, MaxPool
and AveragePool (conv_op.cc, pool_op.cc), which read the spatial rank from their input. The
device copies move a tensor between CPU and GPU, and EnsureDense passes a dense tensor through:
on one device each is an Identity.
"""

from __future__ import annotations

from typing import TypeAlias

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.ops.nn import average_pool, conv, max_pool
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef

for _rank in ("1D", "2D", "3D"):
    ops.register(f"Conv{_rank}", since=1, domain=DOMAIN)(conv)
    ops.register(f"MaxPool{_rank}", since=1, domain=DOMAIN)(max_pool)
    ops.register(f"AveragePool{_rank}", since=1, domain=DOMAIN)(average_pool)


def device_copy(op: Op, args: Args, ctx: ImportContext) -> None:
    """The input, unchanged: ONNX leaves placement to the runtime."""
    ctx.output(0, ctx.op1("Identity", [ctx.input(0)]))


for _type in ("CopyCPUToGPU", "CopyGPUToCPU", "CopyFromCPUInput", "EnsureCPUOutput", "EnsureDense"):
    ops.register(_type, since=1, domain=DOMAIN)(device_copy)
