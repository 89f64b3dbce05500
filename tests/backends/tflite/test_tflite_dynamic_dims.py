"""Dynamic dims in a ``.tflite``: kept where TFLite holds them, refused by input where not.

TFLite holds any dim as dynamic (a -1 in the tensor's ``shape_signature``, resized at run time),
batch or not; what it cannot hold is an input of unknown rank. Some TFLiteConverter lowerings
need static shapes: a refusal that goes away with the dims fixed names them (the zoo's cases, in
``tests/models/test_zoo_tensorflow.py``), one that does not leaves them out. Oracles: the file's
own ``shape_signature`` read by LiteRT's interpreter, onnxruntime on the source ONNX model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from unframe.cli.main import cli  # noqa: E402
from unframe.converters import api  # noqa: E402
from unframe.shared_ir.errors import ExitCode  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _save(tmp_path: Path, x: onnx.ValueInfoProto, nodes: list[onnx.NodeProto]) -> Path:
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12, dtype=np.float32)
    )
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], [weight])
    path = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_dynamic_batch_and_sequence_dims_are_kept_and_run(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
        helper.make_node("Softmax", ["h"], ["y"], axis=-1, name="softmax"),
    ]
    src = _save(tmp_path, x, nodes)
    written = tmp_path / "model.tflite"
    assert api.convert(src, written).ok
    interpreter = Interpreter(model_path=str(written))
    (detail,) = interpreter.get_input_details()
    assert detail["shape_signature"].tolist() == [-1, -1, 4]  # both dims kept dynamic
    runner = interpreter.get_signature_runner("serving_default")
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 4), (5, 7, 4), (1, 1, 4)]:
        feed = rng.standard_normal(shape).astype(np.float32)
        (got,) = runner(x=feed).values()
        (want,) = session.run(None, {"x": feed})
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_an_input_of_unknown_rank_is_refused_by_name(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, None)
    src = _save(tmp_path, x, [helper.make_node("MatMul", ["tokens", "w"], ["y"], name="proj")])
    written = tmp_path / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", str(src), "-o", str(written)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "Traceback" not in result.output
    assert "'tokens'" in result.output and "rank" in result.output
    assert "update_model_dims" in result.output  # what to do
    assert not written.exists()


def test_a_refusal_the_dims_do_not_cause_does_not_blame_them(tmp_path: Path) -> None:
    """uint64 BitwiseAnd has no TFLite builtin at any shape: fixing the dynamic batch does not
    let it through, so the refusal names the node and says nothing of the dims."""
    u = helper.make_tensor_value_info("u", TensorProto.UINT64, ["batch", 3])
    masked = helper.make_tensor_value_info("masked", TensorProto.UINT64, ["batch", 3])
    node = helper.make_node("BitwiseAnd", ["u", "u"], ["masked"], name="and_u64")
    graph = helper.make_graph([node], "g", [u], [masked])
    src = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    written = tmp_path / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", str(src), "-o", str(written)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "node 'and_u64': BitwiseAnd" in result.output
    assert "dynamic dims" not in result.output and "dim 0" not in result.output
    assert not written.exists()


def test_a_refusal_the_dims_cause_names_them_and_fixing_them_converts(tmp_path: Path) -> None:
    """A Reshape to (batch from Shape, -1, 5, 5) leaves the Conv2D's depth unknown while the batch
    is: TFLite legalizes Conv2D to a builtin only with a known depth. The refusal names the
    batch dim (one retry with it fixed converts), and ``--input`` fixing it converts and runs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 75])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weights = [
        helper.make_tensor(
            "w", TensorProto.FLOAT, [2, 3, 1, 1], np.linspace(-1, 1, 6, dtype=np.float32)
        ),
        helper.make_tensor("tail", TensorProto.INT64, [3], [-1, 5, 5]),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["batch_dim"], start=0, end=1),
        helper.make_node("Concat", ["batch_dim", "tail"], ["image_shape"], axis=0),
        helper.make_node("Reshape", ["x", "image_shape"], ["image"]),
        helper.make_node("Conv", ["image", "w"], ["y"], name="conv_1x1"),
    ]
    src = tmp_path / "src.onnx"
    graph = helper.make_graph(nodes, "g", [x], [y], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    written = tmp_path / "model.tflite"
    refused = CliRunner().invoke(cli, ["convert", str(src), "-o", str(written)])
    assert refused.exit_code == ExitCode.UNSUPPORTED, refused.output
    assert "Traceback" not in refused.output
    assert "node 'conv_1x1': Conv" in refused.output, refused.output
    assert "TFLite cannot hold the dynamic dims here" in refused.output, refused.output
    assert "input 'x' dim 0 (batch)" in refused.output, refused.output
    assert not written.exists()

    fixed = CliRunner().invoke(cli, ["convert", str(src), "-o", str(written), "--input", "x=2,75"])
    assert fixed.exit_code == 0, fixed.output
    interpreter = Interpreter(model_path=str(written))
    (detail,) = interpreter.get_input_details()
    assert detail["shape_signature"].tolist() == [2, 75]
    inputs = np.random.default_rng(3).standard_normal((2, 75)).astype(np.float32)
    (got,) = interpreter.get_signature_runner("serving_default")(x=inputs).values()
    (expected,) = ort.InferenceSession(str(src)).run(None, {"x": inputs})
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
