"""Large weights: held out of TensorFlow's GraphDef (TF -> ONNX) and kept as variables (ONNX -> TF).

A model over 2 GB takes the same path as the small models here once the size thresholds are
lowered (``freezing.HOLD_OUT_*``, ``shared_ir.io.EXTERNAL_DATA_THRESHOLD``). Oracles: the Keras
model or SavedModel called by TensorFlow, and onnxruntime on the ONNX file written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from tests.keras_fixture import keras_fixture  # noqa: E402, F401 (the keras fixture)
from unframe.converters.adapters import tensorflow as tensorflow_adapter  # noqa: E402
from unframe.converters.api import convert  # noqa: E402
from unframe.frontends.tensorflow import freezing, from_keras, load_tensorflow  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir import io  # noqa: E402
from unframe.shared_ir.errors import UnsupportedError  # noqa: E402
from unframe.shared_ir.options import ConvertOptions  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture
def hold_out_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every float variable held out, as in a model whose weights exceed the thresholds."""
    monkeypatch.setattr(freezing, "HOLD_OUT_ABOVE_BYTES", 0)
    monkeypatch.setattr(freezing, "HOLD_OUT_MIN_BYTES", 0)


def _randomized(model: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = rng.normal(0.0, 0.3, tuple(weight.shape)).astype("float32")
        if "variance" in weight.path:
            values = np.abs(values) + 0.5
        weight.assign(values)
    return model


def _conv_net(keras: Any) -> Any:
    keras.utils.set_random_seed(0)
    image = keras.Input((12, 12, 3), name="image")
    hidden = keras.layers.Conv2D(8, 3, padding="same", name="conv")(image)
    hidden = keras.layers.BatchNormalization(name="bn")(hidden)
    hidden = keras.layers.ReLU()(hidden)
    hidden = keras.layers.DepthwiseConv2D(3, name="depthwise")(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    return _randomized(keras.Model(image, keras.layers.Dense(4, name="head")(hidden)), 1)


def _sequence_net(keras: Any) -> Any:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    hidden = keras.layers.Embedding(50, 12, name="embed")(tokens)
    hidden = keras.layers.LSTM(10, name="lstm")(hidden)
    return _randomized(keras.Model(tokens, keras.layers.Dense(3, name="head")(hidden)), 2)


def _run_onnx(model: ir.Model | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    source = str(model) if isinstance(model, Path) else ir.to_proto(model).SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


@pytest.mark.usefixtures("hold_out_everything")
@pytest.mark.parametrize("build", [_conv_net, _sequence_net], ids=["conv_bn_dense", "embed_lstm"])
def test_held_out_weights_convert_exactly(keras: Any, build: Any) -> None:
    model = build(keras)
    rng = np.random.default_rng(3)
    if model.inputs[0].dtype == "int32":
        x = rng.integers(0, 50, (2, 7)).astype(np.int32)
    else:
        x = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    converted = from_keras(model)
    graph = converted.graph
    # Only the model's own input is a graph input; each weight is an initializer named after
    # its variable (a Conv kernel under its Transpose's name, folded as tf2onnx folds it).
    assert [value.name for value in graph.inputs] == [model.inputs[0].name]
    kernels = {w.path for w in model.weights if w.path.endswith(("kernel", "embeddings"))}
    held = {name for name in graph.initializers if name in kernels}
    assert held, sorted(graph.initializers)
    transposed = {
        node.inputs[0].name for node in graph if node.op_type == "Transpose" and node.inputs[0]
    }
    assert not transposed & held
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(
        _run_onnx(converted, {graph.inputs[0].name or "": x})[0], expected, rtol=RTOL, atol=ATOL
    )


@pytest.mark.usefixtures("hold_out_everything")
def test_held_out_weights_are_the_variables_own_buffers(keras: Any) -> None:
    model = _conv_net(keras)
    converted = from_keras(model)
    head = next(w for w in model.weights if w.path == "head/kernel")
    tensor = converted.graph.initializers["head/kernel"].const_value
    assert tensor is not None
    # No copy of the weight was made on the way into the IR.
    assert np.shares_memory(tensor.numpy(), head.value.read_value()._numpy())


def test_small_models_freeze_every_weight_as_a_constant(keras: Any) -> None:
    tf = import_tensorflow()
    model = _conv_net(keras)
    spec = tf.TensorSpec([None, 12, 12, 3], tf.float32, name="image")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    assert freezing.freeze_function(function).held == []
    forced = freezing.freeze_function(function, hold_out=True)
    # At the default 1 MiB, none of this model's variables is large enough to hold out.
    assert forced.held == []
    held_ops = {node.op for node in forced.graph_def.node}
    assert "VarHandleOp" not in held_ops and "ReadVariableOp" not in held_ops


@pytest.mark.usefixtures("hold_out_everything")
def test_large_model_path_both_ways(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path of a model over 2 GB: SavedModel -> ONNX with external data -> SavedModel whose
    weights are variables (its saved_model.pb holds none of them)."""
    tf = import_tensorflow()
    monkeypatch.setattr(io, "EXTERNAL_DATA_THRESHOLD", 16)
    keras.utils.set_random_seed(0)
    features = keras.Input((64,), name="features")
    hidden = keras.layers.Dense(256, activation="relu", name="wide")(features)
    model = _randomized(keras.Model(features, keras.layers.Dense(64, name="out")(hidden)), 4)
    saved = tmp_path / "dense_saved_model"
    model.export(str(saved), verbose=False)
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)

    onnx_path = tmp_path / "dense.onnx"
    convert(saved, onnx_path, source="tensorflow", target="onnx")
    proto = onnx.load(onnx_path, load_external_data=False)
    external = [
        t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    assert {"wide/kernel", "out/kernel"} <= set(external)
    assert (tmp_path / "dense.onnx.data").stat().st_size >= weight_bytes - 4 * (256 + 64)

    x = np.random.default_rng(5).normal(size=(3, 64)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(
        _run_onnx(onnx_path, {"features": x})[0], expected, rtol=RTOL, atol=ATOL
    )

    back = tmp_path / "back.savedmodel"
    convert(onnx_path, back, source="onnx", target="tensorflow")
    assert (back / "saved_model.pb").stat().st_size < weight_bytes // 4
    loaded = tf.saved_model.load(str(back))
    result = loaded.signatures["serving_default"](features=tf.constant(x))
    np.testing.assert_allclose(next(iter(result.values())).numpy(), expected, rtol=RTOL, atol=ATOL)

    # Weights as graph constants would not fit a graph protobuf: refused, nothing written.
    monkeypatch.setattr(tensorflow_adapter, "GRAPH_CONSTANTS_LIMIT", weight_bytes // 2)
    refused = tmp_path / "constants.savedmodel"
    with pytest.raises(UnsupportedError, match="cannot be graph constants"):
        convert(
            onnx_path, refused, source="onnx", target="tensorflow", tensorflow_weights="constants"
        )
    assert not refused.exists()

    again = load_tensorflow(back, ConvertOptions())
    np.testing.assert_allclose(_run_onnx(again, {"features": x})[0], expected, rtol=RTOL, atol=ATOL)


@pytest.mark.usefixtures("hold_out_everything")
def test_held_weights_are_placeholders_of_their_variables_shapes(keras: Any) -> None:
    tf = import_tensorflow()
    model = _conv_net(keras)
    spec = tf.TensorSpec([None, 12, 12, 3], tf.float32, name="image")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = freezing.freeze_function(function)
    shapes = {weight.tensor.split(":")[0]: tuple(weight.variable.shape) for weight in frozen.held}
    assert len(shapes) == len(model.weights)
    placeholders = {
        node.name: tuple(dim.size for dim in node.attr["shape"].shape.dim)
        for node in frozen.graph_def.node
        if node.op == "Placeholder" and node.name in shapes
    }
    # Grappler saw them with unknown shapes (so it made no tensor of each); they are given back.
    assert placeholders == shapes
    assert not any(node.op == "Const" and node.name in shapes for node in frozen.graph_def.node)
