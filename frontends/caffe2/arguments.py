"""Which arguments Caffe2's operators read: the one place that tells ignored arguments from lost ones.

Caffe2 never complained about an argument an operator does not read (``OperatorBase`` only looks
up the names it asks for), so real nets carry leftovers: Caffe2's own Caffe translator writes
``kernel``, ``pad``, ``stride`` and ``legacy_pad`` beside ``global_pooling``. After a converter
has run, every argument it did not read is one of three things:

- a tuning knob (``BENIGN_ARGS``): accepted silently;
- an argument Caffe2's operator reads and that changes what it computes (``MEANINGFUL``): the
  converter lost it, so the op is refused unless the argument holds its neutral value;
- anything else: Caffe2 ignored it too, so it is accepted with a one-line warning.

``MEANINGFUL`` is read from Caffe2's operator sources (``caffe2/operators/conv_pool_op_base.h``,
``conv_transpose_unpool_op_base.h``, ``pool_op.cc``, ``lp_pool_op.cc``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from unframe.backends.caffe2.native import caffe2_pb2

#: Arguments that tune Caffe2's kernels or devices and never change what an op computes.
BENIGN_ARGS = frozenset({
    "order", "engine", "use_cudnn", "cudnn_exhaustive_search", "exhaustive_search",
    "ws_nbytes_limit", "shared_buffer", "float16_compute", "deterministic", "init_params",
    "use_gpu_engine", "is_test", "training_mode", "no_bias", "device_option",
})  # fmt: skip

#: A value that leaves the op's result as if the argument were absent; None: no such value.
Neutral = int | float | str | None

#: ConvPoolOpBase's constructor reads these for every convolution and pooling op; each value is
#: the neutral one (kernels have none: a kernel always shapes the window).
_GEOMETRY: dict[str, Neutral] = {
    "kernels": None, "kernel": None, "kernel_h": None, "kernel_w": None,
    "strides": 1, "stride": 1, "stride_h": 1, "stride_w": 1,
    "dilations": 1, "dilation": 1, "dilation_h": 1, "dilation_w": 1,
    "pads": 0, "pad": 0, "pad_t": 0, "pad_l": 0, "pad_b": 0, "pad_r": 0,
    "legacy_pad": 0, "global_pooling": 0, "order": "NCHW",
}  # fmt: skip
_POOL = {**_GEOMETRY}
_CONV = {**_GEOMETRY, "group": 1}
# ConvTransposeUnpoolBase reads no dilations and no global_pooling, but output adjustments.
_CONV_TRANSPOSE = {
    **{k: v for k, v in _GEOMETRY.items() if "dilation" not in k and k != "global_pooling"},
    "adjs": 0, "adj": 0, "adj_h": 0, "adj_w": 0, "group": 1,
}  # fmt: skip

#: Per Caffe2 op type: the arguments its operator reads that change what it computes.
MEANINGFUL: Mapping[str, Mapping[str, Neutral]] = {
    "Conv": _CONV,
    "ConvTranspose": _CONV_TRANSPOSE,
    "MaxPool": _POOL,
    "AveragePool": {**_POOL, "count_include_pad": 0},
    "LpPool": {**_POOL, "p": None},
}


def arg_value(arg: caffe2_pb2.Argument) -> object:
    """An argument's value as Caffe2's ``GetSingleArgument``/``GetRepeatedArgument`` sees it."""
    if arg.HasField("i"):
        return int(arg.i)
    if arg.HasField("f"):
        return float(arg.f)
    if arg.HasField("s"):
        return arg.s.decode("utf-8", errors="replace")
    if arg.ints:
        return [int(v) for v in arg.ints]
    if arg.floats:
        return [float(v) for v in arg.floats]
    return []  # an empty repeated argument: Caffe2 reads it as not given


def is_neutral(arg: caffe2_pb2.Argument, neutral: Neutral) -> bool:
    """Whether ``arg`` holds the value that leaves the op as if it were absent."""
    value = arg_value(arg)
    if value == []:
        return True
    if neutral is None:
        return False
    if isinstance(value, list):
        return all(v == neutral for v in value)
    if isinstance(value, str) and isinstance(neutral, str):
        return value.upper() == neutral.upper()
    return value == neutral


def sort_unread(op: caffe2_pb2.OperatorDef, unread: set[str]) -> tuple[list[str], list[str]]:
    """Splits arguments no converter read into (lost: refuse the op, ignored: warn)."""
    meaningful = MEANINGFUL.get(op.type, {})
    args = {arg.name: arg for arg in op.arg}
    lost, ignored = [], []
    for name in sorted(unread - BENIGN_ARGS):
        if name in meaningful and not is_neutral(args[name], meaningful[name]):
            lost.append(name)
        elif name not in meaningful:
            ignored.append(name)
    return lost, ignored


def warn_ignored(where: str, location: str, op: caffe2_pb2.OperatorDef, names: list[str]) -> None:
    """One warning line per op naming the arguments Caffe2's operator does not read either."""
    node = f"{location} {op.name!r}" if op.name else location
    listed = ", ".join(repr(n) for n in names)
    warnings.warn(
        f"{where}: {node}: ignored argument(s) {listed}: Caffe2's {op.type} does not read them",
        stacklevel=3,
    )
