"""Builders for small NetDefs, and the two oracles: the executor and onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import make_arg
from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model
from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.runner import run_reference


def op(op_type: str, inputs: list[str], outputs: list[str], **args: Any) -> caffe2_pb2.OperatorDef:
    result = caffe2_pb2.OperatorDef(type=op_type, input=inputs, output=outputs)
    result.arg.extend(make_arg(k, v) for k, v in args.items())
    return result


def fill(name: str, array: np.ndarray) -> caffe2_pb2.OperatorDef:
    array = np.asarray(array)
    kinds = {
        np.float32: "GivenTensorFill",
        np.int64: "GivenTensorInt64Fill",
        np.int32: "GivenTensorIntFill",
    }
    values = array.reshape(-1).tolist()
    return op(kinds[array.dtype.type], [], [name], shape=list(array.shape), values=values)


def model(
    ops: list[caffe2_pb2.OperatorDef],
    weights: dict[str, np.ndarray],
    inputs: dict[str, list[int]],
    outputs: list[str],
) -> Caffe2Model:
    predict = caffe2_pb2.NetDef(name="test", op=ops)
    predict.external_input.extend([*inputs, *weights])
    predict.external_output.extend(outputs)
    init = caffe2_pb2.NetDef(name="test_init", op=[fill(k, v) for k, v in weights.items()])
    return Caffe2Model(predict, init, {k: (1, v) for k, v in inputs.items()})


def compare(c2: Caffe2Model, feeds: dict[str, np.ndarray], rtol: float = 1e-4) -> ir.Model:
    """Imports ``c2``; its outputs in onnxruntime must equal the executor's on the NetDef."""
    specs = {k: InputSpec(k, tuple(v.shape), v.dtype) for k, v in feeds.items()}
    imported = import_caffe2(c2, ConvertOptions(inputs=specs))
    reference = run_reference(imported, feeds)
    assert reference.engine == "onnxruntime", reference.fallback_reason
    executed = run_net(c2.predict_net, c2.init_net, feeds)
    assert list(reference.outputs) == list(executed)
    for name, want in executed.items():
        np.testing.assert_allclose(
            reference.outputs[name], want, rtol=rtol, atol=1e-5, err_msg=name
        )
    return imported


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
