"""Resize, ConvTranspose, pooling with Indices and the recurrent ops in the TensorFlow backend,
on the semantics onnx's node tests leave thin: a Resize inside a channels-last Conv region,
ConvTranspose with output_shape/group/dilations, dilated MaxPool's Indices, a bidirectional LSTM
with initial states and sequence_lens, a GRU with linear_before_reset.

Oracle: onnxruntime on the source ONNX model (rtol 1e-4, atol 1e-5), fed seeded inputs, at two
batch sizes where the batch dim is dynamic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
F = TensorProto.FLOAT


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto],
    opset: int = 19,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model


def _check(proto: onnx.ModelProto, feeds_by_case: list[dict[str, np.ndarray]]) -> Any:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    built = to_tensorflow(ir.from_proto(proto))
    for feeds in feeds_by_case:
        want = session.run(None, feeds)
        got = run_built(built, feeds)
        for output, expected in zip(proto.graph.output, want, strict=True):
            actual = got[output.name]
            assert actual.dtype == expected.dtype, output.name
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=output.name)
    return built


def _weight(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


@pytest.mark.parametrize(
    ("mode", "coordinates", "scale"),
    [
        # A fractional scale with align_corners is left out: onnxruntime divides by the
        # integer output size there, onnx's reference (the backend follows it) by scale * size.
        ("linear", "half_pixel", 1.5),
        ("cubic", "align_corners", 2.0),
        ("nearest", "asymmetric", 3.0),
    ],
)
def test_resize_between_convs_stays_channels_last(
    mode: str, coordinates: str, scale: float
) -> None:
    """Resize on a Conv's channels-last output resizes the held axes: no Transpose in between."""
    rng = np.random.default_rng(1)
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    model = _model(
        [
            helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
            helper.make_node(
                "Resize",
                ["a", "", "scales"],
                ["r"],
                mode=mode,
                coordinate_transformation_mode=coordinates,
            ),
            helper.make_node("Conv", ["r", "w2"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", F, ["n", 3, 5, 6])],
        [helper.make_tensor_value_info("y", F, None)],
        [_weight(rng, "w1", (4, 3, 3, 3)), _weight(rng, "w2", (2, 4, 1, 1)), scales],
    )
    feeds = [{"x": rng.standard_normal((n, 3, 5, 6)).astype(np.float32)} for n in (1, 3)]
    built = _check(model, feeds)
    assert built.transposes == 2  # the input to NHWC and the output back, nothing between
    # Constant scales and static sizes: the indices and weights are graph constants, with no
    # float64 arithmetic left to run (TFLite's builtins have none).
    float64_ops = [
        op.type
        for op in built.function.graph.get_operations()
        if op.type != "Const" and any(out.dtype.name == "float64" for out in op.outputs)
    ]
    assert float64_ops == []


def test_conv_transpose_output_shape_group_and_dilations() -> None:
    rng = np.random.default_rng(2)
    model = _model(
        [
            helper.make_node(
                "ConvTranspose",
                ["x", "w", "b"],
                ["y"],
                group=2,
                strides=[2, 3],
                dilations=[2, 1],
                output_shape=[12, 10],
            )
        ],
        [helper.make_tensor_value_info("x", F, ["n", 4, 5, 4])],
        [helper.make_tensor_value_info("y", F, None)],
        [_weight(rng, "w", (4, 3, 3, 2)), _weight(rng, "b", (6,))],
    )
    _check(model, [{"x": rng.standard_normal((n, 4, 5, 4)).astype(np.float32)} for n in (1, 2)])


def test_dilated_max_pool_indices_with_pads_and_ceil_mode() -> None:
    rng = np.random.default_rng(3)
    model = _model(
        [
            helper.make_node(
                "MaxPool",
                ["x"],
                ["y", "i"],
                kernel_shape=[3, 2],
                strides=[2, 2],
                dilations=[2, 1],
                pads=[1, 0, 2, 1],
                ceil_mode=1,
            )
        ],
        [helper.make_tensor_value_info("x", F, ["n", 3, 9, 8])],
        [
            helper.make_tensor_value_info("y", F, None),
            helper.make_tensor_value_info("i", TensorProto.INT64, None),
        ],
        [],
    )
    _check(model, [{"x": rng.standard_normal((n, 3, 9, 8)).astype(np.float32)} for n in (1, 2)])


def test_bidirectional_lstm_with_initial_state_and_sequence_lens() -> None:
    rng = np.random.default_rng(4)
    seq, batch, features, hidden = 5, 3, 4, 6
    model = _model(
        [
            helper.make_node(
                "LSTM",
                ["x", "w", "r", "b", "lens", "h0", "c0", "p"],
                ["y", "y_h", "y_c"],
                hidden_size=hidden,
                direction="bidirectional",
            )
        ],
        [
            helper.make_tensor_value_info("x", F, [seq, batch, features]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, [batch]),
            helper.make_tensor_value_info("h0", F, [2, batch, hidden]),
            helper.make_tensor_value_info("c0", F, [2, batch, hidden]),
        ],
        [
            helper.make_tensor_value_info("y", F, None),
            helper.make_tensor_value_info("y_h", F, None),
            helper.make_tensor_value_info("y_c", F, None),
        ],
        [
            _weight(rng, "w", (2, 4 * hidden, features)),
            _weight(rng, "r", (2, 4 * hidden, hidden)),
            _weight(rng, "b", (2, 8 * hidden)),
            _weight(rng, "p", (2, 3 * hidden)),
        ],
    )
    feeds = {
        "x": rng.standard_normal((seq, batch, features)).astype(np.float32),
        "lens": np.array([5, 2, 3], np.int32),
        "h0": rng.standard_normal((2, batch, hidden)).astype(np.float32),
        "c0": rng.standard_normal((2, batch, hidden)).astype(np.float32),
    }
    _check(model, [feeds])


def test_gru_linear_before_reset_reverse_dynamic_batch() -> None:
    rng = np.random.default_rng(5)
    seq, features, hidden = 4, 3, 5
    model = _model(
        [
            helper.make_node(
                "GRU",
                ["x", "w", "r", "b"],
                ["y", "y_h"],
                hidden_size=hidden,
                linear_before_reset=1,
                direction="reverse",
            )
        ],
        [helper.make_tensor_value_info("x", F, [seq, "n", features])],
        [
            helper.make_tensor_value_info("y", F, None),
            helper.make_tensor_value_info("y_h", F, None),
        ],
        [
            _weight(rng, "w", (1, 3 * hidden, features)),
            _weight(rng, "r", (1, 3 * hidden, hidden)),
            _weight(rng, "b", (1, 6 * hidden)),
        ],
    )
    feeds = [{"x": rng.standard_normal((seq, n, features)).astype(np.float32)} for n in (1, 4)]
    _check(model, feeds)
