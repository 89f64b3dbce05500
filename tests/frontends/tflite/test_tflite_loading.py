""".tflite -> the IR through tf2onnx's TFLite path: a third-party file, read-back, bad input.

Oracles: Keras' own outputs for a file TFLiteConverter wrote straight from a Keras model,
onnxruntime on the source ONNX model for what unframe wrote, LiteRT on the file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from unframe.cli.main import cli  # noqa: E402
from unframe.converters import api  # noqa: E402
from unframe.converters.adapters.tflite import TFLiteFramework  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.errors import ExitCode  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, np.ndarray]:
    """A Keras functional CNN and the .tflite TFLiteConverter writes from it (no unframe)."""
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((12, 12, 3), name="image")
    hidden = keras.layers.Conv2D(6, 3, activation="relu", padding="same")(image)
    hidden = keras.layers.MaxPooling2D()(hidden)
    hidden = keras.layers.DepthwiseConv2D(3, padding="same")(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    scores = keras.layers.Dense(4, activation="softmax", name="scores")(hidden)
    model = keras.Model(image, scores)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path = tmp_path_factory.mktemp("keras") / "keras_cnn.tflite"
    path.write_bytes(converter.convert())
    feed = np.random.default_rng(0).standard_normal((1, 12, 12, 3)).astype(np.float32)
    return path, model, feed


def test_a_tflite_written_by_tfliteconverter_imports_and_matches_keras(
    keras_file: tuple[Path, Any, np.ndarray], tmp_path: Path
) -> None:
    path, model, feed = keras_file
    out = tmp_path / "keras_cnn.onnx"
    result = api.convert(path, out, validate=True, rtol=RTOL, atol=ATOL)
    assert result.validation is not None and result.validation.ok, result.validation
    proto = onnx.load(out)
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {proto.graph.input[0].name: feed})
    expected = np.asarray(model(feed))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # LiteRT runs the file itself to the same numbers.
    (litert,) = TFLiteFramework().run(path, {"image": feed}).values()
    np.testing.assert_allclose(litert, expected, rtol=RTOL, atol=ATOL)


def test_what_unframe_writes_reads_back_with_its_names(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("zeta.x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["batch", 4])
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12, dtype=np.float32)
    )
    nodes = [
        helper.make_node("Add", ["zeta.x", "alpha"], ["sum"], name="add"),
        helper.make_node("MatMul", ["sum", "w"], ["out:proj"], name="proj"),
        helper.make_node("Tanh", ["zeta.x"], ["b_tanh"], name="tanh"),
    ]
    outputs = [
        helper.make_tensor_value_info("out:proj", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("b_tanh", TensorProto.FLOAT, ["batch", 4]),
    ]
    graph = helper.make_graph(nodes, "g", [x, y], outputs, [weight])
    src = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    written, back = tmp_path / "model.tflite", tmp_path / "back.onnx"
    api.convert(src, written)
    result = api.convert(written, back, validate=True, rtol=RTOL, atol=ATOL)
    assert result.validation is not None and result.validation.ok
    proto = onnx.load(back)
    assert [v.name for v in proto.graph.input] == ["zeta.x", "alpha"]
    assert [v.name for v in proto.graph.output] == ["out:proj", "b_tanh"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_param")
    rng = np.random.default_rng(3)
    feeds = {name: rng.standard_normal((3, 4)).astype(np.float32) for name in ("zeta.x", "alpha")}
    source = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    again = ort.InferenceSession(str(back), providers=["CPUExecutionProvider"])
    for want, got in zip(source.run(None, feeds), again.run(None, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("damage", ["not_a_flatbuffer", "truncated"])
def test_bad_files_exit_2_with_nothing_written(
    damage: str, keras_file: tuple[Path, Any, np.ndarray], tmp_path: Path
) -> None:
    good = keras_file[0].read_bytes()
    bad = tmp_path / f"{damage}.tflite"
    bad.write_bytes(b"name,value\n1,2\n" * 20 if damage == "not_a_flatbuffer" else good[:600])
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(bad), "-o", str(out)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "Traceback" not in result.output
    expected = "not a TFLite FlatBuffer" if damage == "not_a_flatbuffer" else "truncated or corrupt"
    assert expected in result.output and bad.name in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name]


def test_signature_option_picks_the_tflite_signature(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    src, written = tmp_path / "relu.onnx", tmp_path / "relu.tflite"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    api.convert(src, written)
    missing = tmp_path / "missing.onnx"
    args = ["convert", str(written), "-o", str(missing), "--signature", "nope"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "'nope'" in result.output and "serving_default" in result.output
    assert not missing.exists()
    named = tmp_path / "named.onnx"
    args = ["convert", str(written), "-o", str(named), "--signature", "serving_default"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == ExitCode.OK, result.output
    assert [v.name for v in onnx.load(named).graph.output] == ["y"]


def test_a_file_written_with_layout_nhwc_reads_back_in_onnx_layout(tmp_path: Path) -> None:
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 2, 6, 6])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 3, 6, 6])
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [3, 2, 3, 3], np.linspace(-1, 1, 54, dtype=np.float32)
    )
    conv = helper.make_node("Conv", ["image", "w"], ["conv"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [conv, helper.make_node("Relu", ["conv"], ["features"])],
        "g",
        [image],
        [features],
        [weight],
    )
    src, written = tmp_path / "conv.onnx", tmp_path / "conv.tflite"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    api.convert(src, written, layout="nhwc")
    back = tmp_path / "back.onnx"
    result = api.convert(written, back, validate=True, rtol=RTOL, atol=ATOL)
    assert result.validation is not None and result.validation.ok
    proto = onnx.load(back)
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input]
    assert dims == [[1, 2, 6, 6]]
    feed = {"image": np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(np.float32)}
    source = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    again = ort.InferenceSession(str(back), providers=["CPUExecutionProvider"])
    (want,), (got,) = source.run(None, feed), again.run(None, feed)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
