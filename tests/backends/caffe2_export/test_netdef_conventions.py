"""What the backend writes: Caffe2's op names, typed arguments and fills, inputs and outputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import run_net
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.converters.framework import ConvertOptions
from unframe.shared_ir.errors import ExitCode, UnsupportedOpsError


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list,
    outputs: list,
    inits: list | None = None,
    opset: int = 18,
) -> ir.Model:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def _conv_model() -> ir.Model:
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    shape = np.array([1, -1], dtype=np.int64)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 2, 1], strides=[2, 1]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(shape, "shape")],
    )


def _args(op: caffe2_pb2.OperatorDef) -> dict[str, caffe2_pb2.Argument]:
    return {a.name: a for a in op.arg}


def test_conv_arguments_and_typed_fills() -> None:
    nets = export_model(_conv_model())
    conv = next(op for op in nets.predict_net.op if op.type == "Conv")
    args = _args(conv)
    assert list(args["kernels"].ints) == [3, 3]
    assert list(args["strides"].ints) == [2, 1]
    assert list(args["pads"].ints) == [1, 0, 2, 1]  # begins, then ends
    assert args["order"].s == b"NCHW" and args["group"].i == 1
    fills = {op.output[0]: op.type for op in nets.init_net.op}
    assert fills == {"w": "GivenTensorFill", "shape": "GivenTensorInt64Fill"}
    assert list(nets.predict_net.external_input) == ["x", "w", "shape"]
    assert list(nets.predict_net.external_output) == ["y"]
    assert nets.value_info == {"x": (TensorProto.FLOAT, [1, 3, 8, 8])}


def test_adapter_writes_a_model_directory_that_runs(tmp_path: Path) -> None:
    framework = Caffe2Framework()
    out = tmp_path / "net.caffe2"
    out.mkdir()
    model = _conv_model()
    framework.save(model, out, ConvertOptions())
    assert json.loads((out / "value_info.json").read_text()) == {"x": [1, [1, 3, 8, 8]]}
    assert framework.matches(out, for_writing=False)
    assert framework.matches(tmp_path / "other.caffe2", for_writing=True)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    from unframe.shared_ir.runner import run_reference

    want = run_reference(model, {"x": x}).outputs["y"]
    np.testing.assert_allclose(framework.run(out, {"x": x})["y"], want, rtol=1e-5, atol=1e-5)
    reloaded = framework.load(out, ConvertOptions())
    np.testing.assert_allclose(
        run_reference(reloaded, {"x": x}).outputs["y"], want, rtol=1e-5, atol=1e-5
    )


def test_every_unsupported_node_is_reported_at_once() -> None:
    nodes = [
        helper.make_node("Det", ["x4"], ["d"]),
        helper.make_node("Unique", ["x"], ["u"]),
        helper.make_node("Einsum", ["x", "x"], ["e"], equation="ij,jk->ik"),
    ]
    model = _model(
        nodes,
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3]),
            helper.make_tensor_value_info("x4", TensorProto.FLOAT, [4, 4]),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("d", "u", "e")],
    )
    found = Caffe2Framework().unsupported_nodes(model)
    assert {u.op_type for u in found} == {"Unique", "Einsum"}
    # Once converters exist for every op type, the ones refused for their inputs show up.
    with pytest.raises(UnsupportedOpsError) as caught:
        export_model(
            _model(
                [nodes[0]],
                [helper.make_tensor_value_info("x4", TensorProto.FLOAT, [4, 4])],
                [helper.make_tensor_value_info("d", TensorProto.FLOAT, None)],
            )
        )
    assert caught.value.exit_code == ExitCode.UNSUPPORTED
    assert "(4, 4)" in caught.value.details()[0]


def test_softmax_semantics_before_and_after_opset_13() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    for opset, want in ((11, _coerced_softmax(x)), (13, _softmax(x, axis=1))):
        model = _model(
            [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
            opset=opset,
        )
        nets = export_model(model)
        got = run_net(nets.predict_net, nets.init_net, {"x": x})["y"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _coerced_softmax(x: np.ndarray) -> np.ndarray:
    return _softmax(x.reshape(2, -1), axis=1).reshape(x.shape)


def test_constant_graph_output_is_written_by_the_predict_net() -> None:
    value = helper.make_tensor("v", TensorProto.INT64, [2], [4, 5])
    model = _model(
        [helper.make_node("Constant", [], ["y"], value=value)],
        [],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    nets = export_model(model)
    assert [op.type for op in nets.predict_net.op] == ["Copy"]
    np.testing.assert_array_equal(run_net(nets.predict_net, nets.init_net, {})["y"], [4, 5])


@pytest.mark.parametrize(
    ("constant", "rounded"),
    [([0.5, -2.0, 1024.25], 0), ([0.1, 1.0 / 3.0, 2.0], 2)],  # 0.1 and 1/3 need > 24 bits
)
def test_double_constants_that_float32_rounds_are_warned_about(
    constant: list[float], rounded: int
) -> None:
    c = onnx.numpy_helper.from_array(np.array(constant, dtype=np.float64), "c")
    model = _model(
        [helper.make_node("Add", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3])],
        [c],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nets = export_model(model)
    messages = [str(w.message) for w in caught if "GivenTensorDoubleFill" in str(w.message)]
    if rounded:
        assert len(messages) == 1 and f"{rounded} of 3 values are rounded" in messages[0]
    else:
        assert not messages
    (fill,) = [op for op in nets.init_net.op if op.type == "GivenTensorDoubleFill"]
    assert fill.output[0] == "c"
