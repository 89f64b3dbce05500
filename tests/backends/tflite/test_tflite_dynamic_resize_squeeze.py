"""Resize to run-time sizes and Squeeze with dynamic dims, on the TFLite and TensorFlow targets.

With a dynamic batch a Resize to run-time sizes loses every static dim, and TFLite legalizes a
Conv2D after it only with a known channel depth: the lowering gives back the dims ONNX knows.
With two dynamic dims TFLiteConverter rewrites nn.MultiheadAttention's Unsqueeze, Transpose,
Squeeze chain into a tfl.squeeze it then rejects: a Squeeze of unit axes is lowered as a Reshape.
Oracles: onnx's own Squeeze node tests (their expected outputs), onnxruntime on the source model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from unframe.backends.tensorflow.native import run_saved_model  # noqa: E402
from unframe.converters import api  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
TARGETS = ("tflite", "tensorflow")


def _convert_and_runner(src: Path, tmp_path: Path, target: str) -> Any:
    """``src`` converted to ``target``; a function of the feeds giving the outputs in order,
    run on LiteRT or TensorFlow."""
    written = tmp_path / ("model.tflite" if target == "tflite" else "model.savedmodel")
    assert api.convert(src, written, target=target).ok
    if target == "tflite":
        runner = Interpreter(model_path=str(written)).get_signature_runner("serving_default")
        return lambda feeds: list(runner(**feeds).values())
    return lambda feeds: list(run_saved_model(written, feeds).values())


def _save(tmp_path: Path, graph: onnx.GraphProto, opset: int) -> Path:
    path = tmp_path / "src.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return path


def _squeeze_cases() -> list[Any]:
    from onnx.backend.test.case.node import collect_testcases

    # onnx fills one list per process: after a collect_testcases(None) elsewhere in the process
    # (tests/backends/pytorch/test_node_cases.py), asking for "Squeeze" returns every op's cases.
    with np.errstate(all="ignore"):
        cases = [
            case
            for case in collect_testcases("Squeeze")
            if case.data_sets and [node.op_type for node in case.model.graph.node] == ["Squeeze"]
        ]
    assert {case.name for case in cases} >= {"test_squeeze", "test_squeeze_negative_axes"}
    return cases


@pytest.mark.parametrize("target", TARGETS)
def test_onnx_squeeze_node_tests_with_the_kept_dims_dynamic(target: str, tmp_path: Path) -> None:
    """onnx's Squeeze tests with constant axes and every dim they keep dynamic: their expected
    outputs exactly, and onnxruntime's at other sizes of those dims."""
    for case in _squeeze_cases():
        (node,) = case.model.graph.node
        ((x, axes), (expected,)) = case.data_sets[0]
        squeezed = {a % x.ndim for a in axes.tolist()}
        names = [f"d{i}" if i not in squeezed else 1 for i in range(x.ndim)]
        graph = helper.make_graph(
            [helper.make_node("Squeeze", list(node.input), list(node.output), name="squeeze")],
            case.name,
            [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, names)],
            [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
            [numpy_helper.from_array(axes, node.input[1])],
        )
        folder = tmp_path / case.name
        folder.mkdir()
        src = _save(folder, graph, case.model.opset_import[0].version)
        run = _convert_and_runner(src, folder, target)
        (got,) = run({node.input[0]: x})
        np.testing.assert_array_equal(got, expected)
        session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
        other = np.random.default_rng(0).standard_normal(
            [1 if i in squeezed else d + 2 for i, d in enumerate(x.shape)]
        )
        feed = {node.input[0]: other.astype(np.float32)}
        (got,) = run(feed)
        np.testing.assert_array_equal(got, session.run(None, feed)[0])


@pytest.mark.parametrize("target", TARGETS)
def test_attention_packed_projection_with_dynamic_batch_and_sequence(
    target: str, tmp_path: Path
) -> None:
    """nn.MultiheadAttention's packed q/k/v split as torch exports it: Unsqueeze(0), Transpose
    [3,1,2,0,4], Squeeze([3]) on a [seq, batch, 3, embed] tensor with both leading dims dynamic."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", 3, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Unsqueeze", ["x", "zero"], ["u"], name="unsqueeze"),
        helper.make_node("Transpose", ["u"], ["t"], perm=[3, 1, 2, 0, 4], name="transpose"),
        helper.make_node("Squeeze", ["t", "three"], ["s"], name="squeeze"),
        helper.make_node("Gather", ["s", "one"], ["y"], axis=0, name="key"),
    ]
    constants = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([3], np.int64), "three"),
        numpy_helper.from_array(np.array(1, np.int64), "one"),
    ]
    src = _save(tmp_path, helper.make_graph(nodes, "mha", [x], [y], constants), 18)
    run = _convert_and_runner(src, tmp_path, target)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for seq, batch in [(5, 2), (1, 3), (7, 1)]:
        feed = {"x": rng.standard_normal((seq, batch, 3, 8)).astype(np.float32)}
        (got,) = run(feed)
        np.testing.assert_array_equal(got, session.run(None, feed)[0])


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("target", TARGETS)
def test_resize_to_run_time_sizes_then_conv_with_dynamic_batch(
    target: str, mode: str, tmp_path: Path
) -> None:
    """The U-Net's last F.interpolate(size=skip.shape[2:]): sizes are the batch and channels
    read at run time and the skip's spatial size; a 1x1 Conv follows."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Shape", ["h"], ["h_shape"], start=0, end=2, name="batch_channels"),
        helper.make_node("Concat", ["h_shape", "hw"], ["sizes"], axis=0, name="sizes"),
        helper.make_node(
            "Resize",
            ["h", "", "", "sizes"],
            ["r"],
            mode=mode,
            name="resize",
            coordinate_transformation_mode="asymmetric" if mode == "nearest" else "half_pixel",
            nearest_mode="floor",
        ),
        helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="head"),
    ]
    constants = [
        numpy_helper.from_array(rng.standard_normal((5, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b1"),
        numpy_helper.from_array(np.array([12, 9], np.int64), "hw"),
        numpy_helper.from_array(rng.standard_normal((2, 5, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b2"),
    ]
    src = _save(tmp_path, helper.make_graph(nodes, "upsample", [x], [y], constants), 18)
    run = _convert_and_runner(src, tmp_path, target)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        feed = {"x": rng.standard_normal((batch, 3, 6, 6)).astype(np.float32)}
        (got,) = run(feed)
        np.testing.assert_allclose(got, session.run(None, feed)[0], rtol=RTOL, atol=ATOL)
