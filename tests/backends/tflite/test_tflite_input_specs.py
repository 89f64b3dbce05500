"""``--input`` on a TFLite target fixes the input's dims in the written ``.tflite``, as it does for
the other targets: the file's own input shape (``shape`` and ``shape_signature``, read by LiteRT's
interpreter) is the one given, dims given as ``?`` or a symbol stay dynamic, and the file runs
on LiteRT with the outputs onnxruntime gives on the source model. A spec that contradicts the
model (a name it does not take, a wrong rank, a fixed dim given another size) is bad input.
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
from unframe.shared_ir.errors import ExitCode  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _conv_model(tmp_path: Path, x_shape: list[int | str] | None) -> Path:
    """Conv 3->4 (3x3, pad 1), Relu, global average pool: (N, 3, H, W) -> (N, 4, 1, 1)."""
    rng = np.random.default_rng(0)
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [4, 3, 3, 3], rng.standard_normal(108).astype(np.float32)
    )
    bias = helper.make_tensor(
        "b", TensorProto.FLOAT, [4], rng.standard_normal(4).astype(np.float32)
    )
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["y"], name="pool"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], [weight, bias])
    path = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _convert(src: Path, out: Path, *specs: str) -> tuple[int, str]:
    args = ["convert", str(src), "-o", str(out)]
    for spec in specs:
        args += ["--input", spec]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output + result.stderr


def _check_runs_like_onnxruntime(src: Path, written: Path, shape: tuple[int, ...]) -> None:
    interpreter = Interpreter(model_path=str(written))
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    feed = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    interpreter.set_tensor(detail["index"], feed)
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"x": feed})
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_input_spec_fixes_dynamic_dims_in_the_file(tmp_path: Path) -> None:
    src = _conv_model(tmp_path, ["batch", 3, "height", "width"])
    dynamic = tmp_path / "dynamic.tflite"
    assert _convert(src, dynamic)[0] == 0
    (detail,) = Interpreter(model_path=str(dynamic)).get_input_details()
    assert detail["shape_signature"].tolist() == [-1, 3, -1, -1]  # what --input must change

    fixed = tmp_path / "fixed.tflite"
    code, output = _convert(src, fixed, "x=1,3,10,12")
    assert code == 0, output
    (detail,) = Interpreter(model_path=str(fixed)).get_input_details()
    assert detail["shape"].tolist() == [1, 3, 10, 12]
    assert detail["shape_signature"].tolist() == [1, 3, 10, 12]
    _check_runs_like_onnxruntime(src, fixed, (1, 3, 10, 12))


def test_dims_given_as_symbols_stay_dynamic(tmp_path: Path) -> None:
    src = _conv_model(tmp_path, ["batch", 3, "height", "width"])
    written = tmp_path / "model.tflite"
    code, output = _convert(src, written, "x=?,3,8,batch_w")
    assert code == 0, output
    (detail,) = Interpreter(model_path=str(written)).get_input_details()
    assert detail["shape_signature"].tolist() == [-1, 3, 8, -1]


def test_input_spec_gives_an_input_of_unknown_rank_its_shape(tmp_path: Path) -> None:
    src = _conv_model(tmp_path, None)
    written = tmp_path / "model.tflite"
    code, output = _convert(src, written, "x=2,3,6,6")
    assert code == 0, output
    (detail,) = Interpreter(model_path=str(written)).get_input_details()
    assert detail["shape_signature"].tolist() == [2, 3, 6, 6]
    _check_runs_like_onnxruntime(src, written, (2, 3, 6, 6))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("image=1,3,8,8", "--input names image, which the model does not take"),
        ("x=1,3,8", "gives 3 dims, the input has 4"),
        ("x=1,4,8,8", "axis 1 of this input is 3, not 4"),
    ],
    ids=["unknown_name", "wrong_rank", "fixed_dim_differs"],
)
def test_input_spec_the_model_contradicts_is_bad_input(
    tmp_path: Path, spec: str, words: str
) -> None:
    src = _conv_model(tmp_path, ["batch", 3, "height", "width"])
    written = tmp_path / "model.tflite"
    code, output = _convert(src, written, spec)
    assert code == ExitCode.BAD_INPUT, output
    assert words in output and "Traceback" not in output
    assert not written.exists()
