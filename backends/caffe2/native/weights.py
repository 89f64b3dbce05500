"""Random weights for NetDefs published without them (the Caffe2 model zoo's pbtxt nets).

A predict net fixes every parameter's shape except the output width of each Conv/FC layer (how
many filters it has). :func:`random_init_net` walks the net once in the reference executor,
creating each parameter when an op first reads it, with the shape that the op's data input and
arguments imply; output widths come from ``out_channels``, else ``classes`` for the last weighted
layer and ``width`` for the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import onnx.helper

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor.ops.conv import geometry_arg
from unframe.backends.caffe2.native.executor.registry import FRAMEWORK, OpContext
from unframe.backends.caffe2.native.executor.workspace import Workspace, unsupported_ops
from unframe.backends.caffe2.native.netdef import ValueInfo
from unframe.backends.caffe2.native.values import set_floats
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError

_CONV = {"Conv", "Conv1D", "Conv2D", "Conv3D"}
_WEIGHTED = _CONV | {"ConvTranspose", "FC", "FCTransposed"}
_PER_CHANNEL = {"SpatialBN", "PRelu", "InstanceNorm", "GroupNorm"}


def random_init_net(
    predict_net: caffe2_pb2.NetDef,
    value_info: ValueInfo,
    seed: int = 0,
    *,
    out_channels: Mapping[str, int] | None = None,
    width: int = 16,
    classes: int = 1000,
) -> caffe2_pb2.NetDef:
    """An init net of GivenTensorFill ops giving every parameter of ``predict_net`` a value.

    Args:
        predict_net: the net; every blob it reads that no op writes and ``value_info`` does not
            describe is a parameter.
        value_info: the net's data inputs, ``{name: (onnx_elem_type, dims)}``.
        seed: seeds the values (and the dry run's input data).
        out_channels: output widths by weight blob name, for the layers whose real width matters.
        width: the output width of the other Conv/FC layers.
        classes: the output width of the last Conv/FC layer.

    Raises:
        BadInputError: a parameter whose shape the net does not determine.
        UnsupportedOpsError: the net has ops that the executor lacks.
    """
    missing = unsupported_ops(predict_net)
    if missing:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK, direction="run")
    rng = np.random.default_rng(seed)
    widths = dict(out_channels or {})
    weighted = [i for i, op in enumerate(predict_net.op) if op.type in _WEIGHTED]
    last_weighted = weighted[-1] if weighted else -1
    workspace = Workspace(seed=seed)
    for name, (elem_type, dims) in value_info.items():
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        workspace.feed(name, rng.standard_normal(dims).astype(dtype))
    init_net = caffe2_pb2.NetDef(name=f"{predict_net.name}_init" if predict_net.name else "init")
    for index, op in enumerate(predict_net.op):
        for position, name in enumerate(op.input):
            if workspace.has(name):
                continue
            if position == 0:
                raise BadInputError(
                    f"op {index} ({op.type}) reads {name!r} as its data input, which is neither "
                    "in value_info nor written by an earlier op",
                    framework=FRAMEWORK,
                )
            ctx = OpContext(op, index, [workspace.fetch(n) for n in op.input[:position]])
            default = classes if index == last_weighted else width
            shape = _parameter_shape(ctx, position, name, widths.get(name, default))
            value = _random_value(op.type, position, shape, rng)
            workspace.feed(name, value)
            init_net.op.append(_given_tensor_fill(name, value))
        workspace.run_op(op, index)
    return init_net


def _parameter_shape(ctx: OpContext, position: int, name: str, out_width: int) -> list[int]:
    """The shape of input ``position`` of ``ctx.op``, given the inputs before it."""
    op_type = ctx.op.type
    x = ctx.inputs[0]
    order = ctx.order() if ctx.has("order") or op_type in _CONV | _PER_CHANNEL else "NCHW"
    channels = x.shape[1] if order == "NCHW" else x.shape[-1]
    group = ctx.arg_int("group", 1)
    if op_type in _CONV or op_type == "ConvTranspose":
        nd = x.ndim - 2
        if position == 1:
            kernel = geometry_arg(ctx, "kernels", "kernel", ("kernel_h", "kernel_w"), nd)
            if kernel is None:
                raise ctx.error(f"cannot infer the shape of {name!r}: no kernel size given")
            if op_type == "ConvTranspose":
                inner = out_width // group
                return [channels, inner, *kernel] if order == "NCHW" else [channels, *kernel, inner]
            if channels % group or out_width % group:
                raise ctx.error(f"{channels} or {out_width} channels do not split into {group}")
            inner = channels // group
            return [out_width, inner, *kernel] if order == "NCHW" else [out_width, *kernel, inner]
        w = ctx.inputs[1]
        return [w.shape[0] if op_type != "ConvTranspose" else w.shape[1] * group]
    if op_type in ("FC", "FCTransposed"):
        axis = ctx.arg_int("axis", 1)
        k = math.prod(x.shape[axis:])
        if position == 1:
            return [out_width, k] if op_type == "FC" else [k, out_width]
        w = ctx.inputs[1]
        return [w.shape[0] if op_type == "FC" else w.shape[-1]]
    if op_type in _PER_CHANNEL:
        return [channels]
    if op_type == "LayerNorm":
        return list(x.shape[ctx.arg_int("axis", 1) :])
    if op_type in ("Add", "Sub", "Mul", "Div") and position == 1 and ctx.arg_int("broadcast", 0):
        axis = ctx.arg_int("axis", -1)
        return [x.shape[axis]]
    raise ctx.error(f"cannot infer the shape of parameter {name!r} (input {position})")


def _random_value(
    op_type: str, position: int, shape: list[int], rng: np.random.Generator
) -> np.ndarray:
    """Values that keep activations in a sane range, so that outputs are worth comparing."""
    if op_type == "SpatialBN":
        if position in (1, 4):  # scale, variance: positive, near 1
            return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if op_type in ("PRelu", "InstanceNorm", "GroupNorm", "LayerNorm") and position == 1:
        return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
    if len(shape) == 1:
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = math.prod(shape) / shape[0]
    return (rng.standard_normal(shape) / math.sqrt(max(fan_in, 1.0))).astype(np.float32)


def _given_tensor_fill(name: str, value: np.ndarray) -> caffe2_pb2.OperatorDef:
    op = caffe2_pb2.OperatorDef(type="GivenTensorFill", output=[name])
    op.arg.add(name="shape", ints=list(value.shape))
    set_floats(op.arg.add(name="values"), value)
    return op
