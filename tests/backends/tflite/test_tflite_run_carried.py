"""``unframe run`` on a ``.tflite`` whose inputs and outputs are of types TFLite lacks (a float8
and an int4 input, a float8 output), carried as uint8 bits / int8 values: the inputs are built
from the file's signature and unframe's record of the carried types (the IR cannot hold such a
file: reading it back is refused), fed in their ONNX types, and the outputs come back decoded.

Oracle: onnx's reference evaluator (``onnx.reference``) on the source ONNX model, fed the same
inputs (the seeded ones ``api.run`` reports, or those of an ``--inputs`` file).
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from unframe.cli.main import cli  # noqa: E402
from unframe.converters import api  # noqa: E402


def _float8_int4_model() -> onnx.ModelProto:
    """y = float(x) * float(q) (x float8 E4M3FN, q int4), z = y as float8 E4M3FN (saturating)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT8E4M3FN, ["batch", 3])
    q = helper.make_tensor_value_info("q", TensorProto.INT4, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT8E4M3FN, ["batch", 3])
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT, name="x_to_float"),
        helper.make_node("Cast", ["q"], ["qf"], to=TensorProto.FLOAT, name="q_to_float"),
        helper.make_node("Mul", ["xf", "qf"], ["y"], name="product"),
        helper.make_node("Cast", ["y"], ["z"], to=TensorProto.FLOAT8E4M3FN, name="y_to_float8"),
    ]
    graph = helper.make_graph(nodes, "carried", [x, q], [y, z])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, Path]:
    folder = tmp_path_factory.mktemp("carried")
    model = _float8_int4_model()
    onnx.save(model, folder / "src.onnx")
    tflite = folder / "model.tflite"
    assert api.convert(folder / "src.onnx", tflite).ok
    return model, tflite


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint8)


def test_api_run_builds_inputs_of_the_carried_types(
    written: tuple[onnx.ModelProto, Path],
) -> None:
    model, tflite = written
    result = api.run(tflite, inputs=["x=4,3"], seed=3)
    assert result.how == "the model run by tflite's runtime"
    assert result.feeds["x"].dtype == ml_dtypes.float8_e4m3fn
    assert result.feeds["q"].dtype == ml_dtypes.int4
    assert result.feeds["x"].shape == (4, 3) and result.feeds["q"].shape == (1, 3)
    feeds = {"x": result.feeds["x"], "q": np.broadcast_to(result.feeds["q"], (4, 3)).copy()}
    result = api.run(tflite, feeds=feeds)
    want_y, want_z = ReferenceEvaluator(model).run(None, feeds)
    assert list(result.outputs) == ["y", "z"]
    np.testing.assert_array_equal(result.outputs["y"], want_y)
    assert result.outputs["z"].dtype == ml_dtypes.float8_e4m3fn
    np.testing.assert_array_equal(_bits(result.outputs["z"]), _bits(want_z))


def test_cli_run_with_inputs_file_matches_the_reference(
    written: tuple[onnx.ModelProto, Path], tmp_path: Path
) -> None:
    """Inputs given as float32 and int8 values the narrow types hold exactly (what an .npz can
    store); the float8 output is written to the .npz as float32, which holds its values exactly
    (an .npz has no float8), and a note says so."""
    model, tflite = written
    x = np.float32([[1.5, -2.0, 0.25], [448.0, -0.5, 3.0], [0.0, -0.0, 0.015625]])
    q = np.int8([[-8, 7, 3], [2, -1, 2], [5, -6, 0]])
    np.savez(tmp_path / "in.npz", x=x, q=q)
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(
        cli,
        ["run", str(tflite), "--inputs", str(tmp_path / "in.npz"), "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    summary = json.loads(result.stdout)
    assert [o["dtype"] for o in summary["outputs"]] == ["float32", "float8_e4m3fn"]
    feeds = {"x": x.astype(ml_dtypes.float8_e4m3fn), "q": q.astype(ml_dtypes.int4)}
    want_y, want_z = ReferenceEvaluator(model).run(None, feeds)
    with np.load(out, allow_pickle=False) as got:
        np.testing.assert_array_equal(got["y"], want_y)
        assert got["z"].dtype == np.float32
        np.testing.assert_array_equal(got["z"], want_z.astype(np.float32))
    assert "output z (float8_e4m3fn) written as float32" in result.stderr
    assert np.abs(want_y).max() > 448  # so z saturates somewhere (448: E4M3FN's largest)
