"""Core ML backend, RNN/GRU/LSTM: weights, biases, initial states and sequence lengths given at
run time, peepholes, ONNX's other activations, both layouts and directions, sequences of a length
known only at run time (a while_loop), exported, re-imported
and run on onnxruntime against onnx's node-test data and onnxruntime on the source model."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from tests.backends.coreml.node_test_data import assert_matches_node_test_data
from unframe.backends.coreml.driver import export_mlprogram
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


@pytest.mark.parametrize(
    "name", ["test_lstm_with_peepholes", "test_gru_seq_length", "test_simple_rnn_batchwise"]
)
def test_recurrence_matches_onnx_node_test_data(name: str) -> None:
    assert_matches_node_test_data(name, rtol=1e-4, atol=1e-5)


T, B, INPUT, H = 4, 3, 5, 6


def _model(op: str, gates: int, layout: int, constants: bool = False, **attrs: Any) -> ir.Model:
    """All of ``op``'s inputs, bidirectional; weights graph inputs unless ``constants``."""
    d = 2
    x_shape = [B, T, INPUT] if layout else [T, B, INPUT]
    state = [B, d, H] if layout else [d, B, H]
    specs = {
        "x": (TensorProto.FLOAT, x_shape),
        "w": (TensorProto.FLOAT, [d, gates * H, INPUT]),
        "r": (TensorProto.FLOAT, [d, gates * H, H]),
        "b": (TensorProto.FLOAT, [d, 2 * gates * H]),
        "lens": (TensorProto.INT32, [B]),
        "h0": (TensorProto.FLOAT, state),
    }
    names = ["x", "w", "r", "b", "lens", "h0"]
    if op == "LSTM":
        specs.update(c0=(TensorProto.FLOAT, state), p=(TensorProto.FLOAT, [d, 3 * H]))
        names += ["c0", "p"]
    rng = np.random.default_rng(7)
    initializers = []
    inputs = []
    for name in names:
        dtype, shape = specs[name]
        if constants and name in ("w", "r", "b", "p"):
            data = rng.standard_normal(shape).astype(np.float32) * 0.5
            initializers.append(helper.make_tensor(name, dtype, shape, data.ravel()))
        else:
            inputs.append(helper.make_tensor_value_info(name, dtype, shape))
    outputs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    node = helper.make_node(
        op, names, outputs, hidden_size=H, direction="bidirectional", layout=layout, **attrs
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializers,
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))


def _feeds(model: ir.Model) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    feeds = {}
    for value in model.graph.inputs:
        shape = [int(d) for d in value.shape]  # type: ignore[arg-type]
        if value.name == "lens":
            feeds["lens"] = np.array([T, 1, 3], np.int32)
        else:
            feeds[value.name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    return feeds


def _check(op: str, gates: int, layout: int, **attrs: Any) -> None:
    """Against onnxruntime, which runs only layout 0: for layout 1 the layout-0 model on the
    inputs transposed, its outputs transposed back."""
    model = _model(op, gates, layout, **attrs)
    feeds = _feeds(model)
    source = _model(op, gates, 0, **attrs)
    source_feeds = {
        name: np.swapaxes(v, 0, 1) if layout and name not in ("w", "r", "b", "lens", "p") else v
        for name, v in feeds.items()
    }
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(source)), source_feeds)
    if layout:
        expected = {
            name: np.transpose(v, (2, 0, 1, 3)) if v.ndim == 4 else np.swapaxes(v, 0, 1)
            for name, v in expected.items()
        }
    actual = CoreMLFramework().run_ir(model, feeds)
    for name, want in expected.items():
        assert actual[name].shape == want.shape
        np.testing.assert_allclose(actual[name], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout", [0, 1])
def test_gru_with_every_input_at_run_time_matches_onnxruntime(layout: int) -> None:
    _check("GRU", 3, layout, linear_before_reset=0)
    _check("GRU", 3, layout, linear_before_reset=1, clip=0.7)


def test_lstm_with_other_activations_and_input_forget_matches_onnxruntime() -> None:
    activations = ["HardSigmoid", "LeakyRelu", "Softsign", "Sigmoid", "ScaledTanh", "Elu"]
    _check(
        "LSTM",
        4,
        0,
        activations=activations,
        activation_alpha=[0.3, 0.2, 0.9, 1.1],
        activation_beta=[0.4, 0.8],
        input_forget=1,
    )


def test_rnn_with_relu_matches_onnxruntime() -> None:
    _check("RNN", 1, 1, activations=["Relu", "Affine"], activation_alpha=[0.5],
           activation_beta=[0.25])  # fmt: skip


def test_constant_lstm_weights_stay_mil_lstm_and_peepholes_unroll() -> None:
    plain = _model("LSTM", 4, 0, constants=True)
    for value in list(plain.graph.inputs):
        if value.name in ("lens", "p"):
            plain.graph.inputs.remove(value)
    plain.graph.node(0).replace_input_with(4, None)
    plain.graph.node(0).replace_input_with(7, None)
    op_types = [
        {op.op_type for op in export_mlprogram(m).mlmodel._mil_program.functions["main"].operations}
        for m in (plain, _model("LSTM", 4, 0, constants=True))
    ]
    assert "lstm" in op_types[0]
    assert "lstm" not in op_types[1] and "matmul" in op_types[1]
    _check("LSTM", 4, 0, constants=True)


@pytest.mark.parametrize(("op", "gates"), [("GRU", 3), ("LSTM", 4)])
def test_a_sequence_length_unknown_when_built_runs_in_a_while_loop(op: str, gates: int) -> None:
    """Both directions, sequence lengths, initial states; run at two lengths."""
    model = _model(op, gates, 0)
    model.graph.inputs[0].shape = ir.Shape(["T", B, INPUT])
    exported = export_mlprogram(_model(op, gates, 0))  # the static form stays unrolled
    ops = {o.op_type for o in exported.mlmodel._mil_program.functions["main"].operations}
    assert "while_loop" not in ops
    rng = np.random.default_rng(5)
    base = _feeds(_model(op, gates, 0))
    for steps in (2, 7):
        feeds = dict(base, x=(rng.standard_normal((steps, B, INPUT)) * 0.5).astype(np.float32))
        feeds["lens"] = np.minimum(feeds["lens"], steps).astype(np.int32)
        expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
        actual = CoreMLFramework().run_ir(model, feeds)
        for name, want in expected.items():
            assert actual[name].shape == want.shape
            np.testing.assert_allclose(actual[name], want, rtol=1e-4, atol=1e-5)
