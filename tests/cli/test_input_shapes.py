"""``--input`` fixes the dims it gives as numbers in what every target writes.

The oracles: onnx's own reader of the written ``.onnx``, onnxruntime running it, and
TensorFlow's own ``tf.saved_model.load`` of the written SavedModel's serving signature. Before,
only the PyTorch and TFLite targets (and Core ML's ranges) read ``--input``; the others wrote the
model's dynamic dims, though the README says ``--input`` fixes an input's shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _dynamic_batch_model(path: Path) -> None:
    """y = relu(x @ W) for x of shape (batch, 3): its batch axis symbolic."""
    weight = numpy_helper.from_array(
        np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 3.0]], np.float32), "W"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _input_dims(path: Path) -> list[int | str]:
    (value,) = onnx.load(path).graph.input
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_onnx_target_gets_the_fixed_dims_and_runs(tmp_path: Path) -> None:
    source, out = tmp_path / "m.onnx", tmp_path / "fixed.onnx"
    _dynamic_batch_model(source)
    result = _invoke("convert", str(source), "-o", str(out), "--input", "x=4,3", "--validate")
    assert result.exit_code == 0, result.output
    assert _input_dims(out) == [4, 3]
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
    (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert y.tolist() == [[1.0, 0.0], [0.5, 1.0], [0.0, 3.0], [0.5, 2.0]]  # relu of W's rows


def test_a_symbol_or_a_range_keeps_the_dim_dynamic(tmp_path: Path) -> None:
    source = tmp_path / "m.onnx"
    _dynamic_batch_model(source)
    for spec, name in (("x=n,3", "symbol.onnx"), ("x=1..8,3", "range.onnx")):
        out = tmp_path / name
        result = _invoke("convert", str(source), "-o", str(out), "--input", spec)
        assert result.exit_code == 0, result.output
        assert _input_dims(out) == ["batch", 3], spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("x=4,5", ["axis 1 of this input is 3, not 5"]),
        ("x=4,3,1", ["gives 3 dims, the input has 2"]),
        ("z=4,3", ["--input names z", "its inputs: x"]),
    ],
    ids=["fixed_dim_differs", "rank_differs", "no_such_input"],
)
def test_an_input_spec_the_model_contradicts_is_bad_input(
    tmp_path: Path, spec: str, words: list[str]
) -> None:
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    _dynamic_batch_model(source)
    result = _invoke("convert", str(source), "-o", str(out), "--input", spec)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr
    assert not out.exists()


def test_savedmodel_signature_gets_the_fixed_dims(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
    source, out = tmp_path / "m.onnx", tmp_path / "fixed.savedmodel"
    _dynamic_batch_model(source)
    result = _invoke("convert", str(source), "-o", str(out), "--input", "x=4,3")
    assert result.exit_code == 0, result.output
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.shape.as_list() == [4, 3]
