"""load_tensorflow: real SavedModel/Keras files and models built here, vs TensorFlow's own outputs.

The oracle is TensorFlow itself (the SavedModel signature or the Keras model called on the same
arrays); the IR runs on onnxruntime. TensorFlow is imported once for the module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest

from helpers import SHARED_FIXTURES

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.frontends.tensorflow import (  # noqa: E402
    SOURCE_KEY,
    from_keras,
    load_tensorflow,
)
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.options import ConvertOptions  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
TF_FIXTURES = SHARED_FIXTURES / "tensorflow"


@pytest.fixture(scope="module")
def tf() -> Any:
    return import_tensorflow()


@pytest.fixture(scope="module")
def keras(tf: Any) -> Any:
    import keras

    return keras


def run_ir(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(
        ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def io_names(model: ir.Model) -> tuple[list[str], list[str]]:
    return [v.name or "" for v in model.graph.inputs], [v.name or "" for v in model.graph.outputs]


def _needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared fixtures are not checked out beside the repo)")


# -- real files -------------------------------------------------------------------------------


def test_tf1_saved_model_from_tf_serving_matches_its_signature(tf: Any) -> None:
    path = TF_FIXTURES / "half_plus_two"
    _needs(path)
    model = load_tensorflow(path, ConvertOptions())
    assert io_names(model) == (["x"], ["y"])
    assert not isinstance(model.graph.inputs[0].shape[0], int)  # the batch stays dynamic
    x = np.array([[0.0], [1.5], [-4.0]], np.float32)
    expected = tf.saved_model.load(str(path)).signatures["serving_default"](x=tf.constant(x))["y"]
    np.testing.assert_allclose(run_ir(model, {"x": x})["y"], expected.numpy(), RTOL, ATOL)
    assert model.metadata_props[SOURCE_KEY] == "SavedModel signature 'serving_default'"


def test_tf1_saved_model_other_signature_by_name(tf: Any) -> None:
    path = TF_FIXTURES / "half_plus_two"
    _needs(path)
    model = load_tensorflow(path, ConvertOptions(extra={"signature": "regress_x2_to_y3"}))
    assert io_names(model) == (["inputs"], ["outputs"])
    x = np.array([[1.0], [2.0]], np.float32)
    signature = tf.saved_model.load(str(path)).signatures["regress_x2_to_y3"]
    expected = signature(inputs=tf.constant(x))["outputs"].numpy()
    np.testing.assert_allclose(run_ir(model, {"inputs": x})["outputs"], expected, RTOL, ATOL)


def test_keras3_sequential_cnn_file_matches_keras(keras: Any) -> None:
    path = TF_FIXTURES / "digits_cnn.keras"
    _needs(path)
    model = load_tensorflow(path, ConvertOptions())
    reference = keras.saving.load_model(path, compile=False)
    inputs, outputs = io_names(model)
    assert inputs == [reference.inputs[0].name] and outputs == [reference.layers[-1].name]
    x = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    got = run_ir(model, {inputs[0]: x})[outputs[0]]
    np.testing.assert_allclose(got, reference(x, training=False).numpy(), RTOL, ATOL)
    assert model.metadata_props[SOURCE_KEY].startswith("Keras 3")


# -- models built here ------------------------------------------------------------------------


def test_attention_block_with_exact_gelu_converts_erfc(keras: Any, tmp_path: Path) -> None:
    """Exact gelu leaves TF's Erfc, which tf2onnx lacks: our handler makes it 1 - Erf."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input((10, 8), name="tokens")
    hidden = keras.layers.Conv1D(8, 3, padding="same", activation="gelu")(tokens)
    hidden = keras.layers.LayerNormalization()(hidden)
    hidden = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(hidden, hidden)
    encoded = keras.layers.Dense(4, name="encoded")(hidden)
    built = keras.Model(tokens, encoded)
    built.save(tmp_path / "block.keras")

    model = load_tensorflow(tmp_path / "block.keras", ConvertOptions())
    assert io_names(model) == (["tokens"], ["encoded"])
    ops = {node.op_type for node in model.graph}
    assert "Erf" in ops and "Erfc" not in ops
    x = np.random.default_rng(1).standard_normal((2, 10, 8)).astype(np.float32)
    expected = built(x, training=False).numpy()
    np.testing.assert_allclose(run_ir(model, {"tokens": x})["encoded"], expected, RTOL, ATOL)


def test_conv1d_lstm_sequence_model_and_dynamic_batch(keras: Any) -> None:
    keras.utils.set_random_seed(2)
    frames = keras.Input((12, 4), name="frames")
    hidden = keras.layers.Conv1D(6, 3, activation="relu")(frames)
    hidden = keras.layers.LSTM(5)(hidden)
    built = keras.Model(frames, keras.layers.Dense(2, name="logits")(hidden))

    model = from_keras(built)
    assert io_names(model) == (["frames"], ["logits"])
    batch = model.graph.inputs[0].shape[0]
    assert not isinstance(batch, int), "the batch dim was fixed"
    for size in (1, 5):  # one model, two batch sizes
        x = np.random.default_rng(size).standard_normal((size, 12, 4)).astype(np.float32)
        expected = built(x, training=False).numpy()
        np.testing.assert_allclose(run_ir(model, {"frames": x})["logits"], expected, RTOL, ATOL)


def test_tf2_saved_model_names_and_order_of_several_inputs(tf: Any, tmp_path: Path) -> None:
    """Signature keys, not tensor names (x:0), name the IR's values; feeds by name match TF."""

    class Blend(tf.Module):
        def __init__(self) -> None:
            self.weight = tf.Variable([[1.0, -2.0], [0.5, 3.0]])

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="zeta"),
                tf.TensorSpec([None, 2], tf.float32, name="alpha"),
            ]
        )
        def __call__(self, zeta: Any, alpha: Any) -> dict[str, Any]:
            mixed = tf.matmul(zeta, self.weight) - alpha
            return {"sum": mixed, "diff": zeta * 2.0 + alpha}

    module = Blend()
    tf.saved_model.save(module, str(tmp_path / "blend"), signatures=module.__call__)
    model = load_tensorflow(tmp_path / "blend", ConvertOptions())
    assert io_names(model) == (["alpha", "zeta"], ["diff", "sum"])
    rng = np.random.default_rng(3)
    zeta, alpha = (rng.standard_normal((3, 2)).astype(np.float32) for _ in range(2))
    signature = tf.saved_model.load(str(tmp_path / "blend")).signatures["serving_default"]
    expected = signature(zeta=tf.constant(zeta), alpha=tf.constant(alpha))
    got = run_ir(model, {"zeta": zeta, "alpha": alpha})
    for name in ("sum", "diff"):
        np.testing.assert_allclose(got[name], expected[name].numpy(), RTOL, ATOL)


def test_tf2_saved_model_capturing_eager_tensors_is_not_composite(tf: Any, tmp_path: Path) -> None:
    """A function that closed over eager tensors takes them as extra (captured) inputs; they
    are frozen into constants, and the signature is still one plain tensor."""
    offsets = tf.constant([[0.5, -1.0, 2.0]])
    picks = tf.constant([2, 0, 1])

    class Shifted(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x: Any) -> dict[str, Any]:
            return {"y": tf.gather(x + offsets, picks, axis=1)}

    module = Shifted()
    tf.saved_model.save(module, str(tmp_path / "shifted"), signatures=module.__call__)
    signature = tf.saved_model.load(str(tmp_path / "shifted")).signatures["serving_default"]
    assert len(signature.captured_inputs) == 2  # what this test is about
    model = load_tensorflow(tmp_path / "shifted", ConvertOptions())
    assert io_names(model) == (["x"], ["y"])
    x = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    expected = signature(x=tf.constant(x))["y"].numpy()
    np.testing.assert_allclose(run_ir(model, {"x": x})["y"], expected, RTOL, ATOL)


def test_frozen_graph_def_with_named_outputs(tf: Any, tmp_path: Path) -> None:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    scale = tf.Variable([2.0, -1.0, 0.5])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def score(features: Any) -> Any:
        return tf.nn.relu(features * scale, name="scores")

    frozen = convert_variables_to_constants_v2(score.get_concrete_function())
    (tmp_path / "frozen.pb").write_bytes(frozen.graph.as_graph_def().SerializeToString())
    model = load_tensorflow(tmp_path / "frozen.pb", ConvertOptions(extra={"outputs": ["scores"]}))
    assert io_names(model) == (["features"], ["scores"])
    x = np.array([[1.0, 2.0, -3.0], [-1.0, 0.0, 4.0]], np.float32)
    np.testing.assert_allclose(run_ir(model, {"features": x})["scores"], score(x).numpy())


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_legacy_h5_file_says_which_keras_read_it(keras: Any, tmp_path: Path) -> None:
    import tf_keras

    legacy = tf_keras.Sequential(
        [tf_keras.Input((3,), name="features"), tf_keras.layers.Dense(2, name="scores")]
    )
    legacy.save(tmp_path / "legacy.h5")
    model = load_tensorflow(tmp_path / "legacy.h5", ConvertOptions())
    assert io_names(model) == (["features"], ["scores"])
    assert model.metadata_props[SOURCE_KEY].split()[0] in ("Keras", "tf_keras")
    x = np.random.default_rng(4).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        run_ir(model, {"features": x})["scores"], legacy(x).numpy(), RTOL, ATOL
    )


def test_broadcast_args_of_run_time_shapes_matches_tensorflow(tf: Any, tmp_path: Path) -> None:
    """tf.broadcast_dynamic_shape on run-time shapes leaves BroadcastArgs, which tf2onnx lacks."""

    class Broadcaster(tf.Module):  # type: ignore[misc]
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None], tf.float32, name="a"),
                tf.TensorSpec([None, None], tf.float32, name="b"),
            ]
        )
        def __call__(self, a: Any, b: Any) -> dict[str, Any]:
            shape = tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))
            wide = tf.broadcast_dynamic_shape(
                tf.shape(b, out_type=tf.int64), tf.shape(a, out_type=tf.int64)
            )
            return {"shape": shape, "wide": wide, "expanded": tf.broadcast_to(b, shape) + a}

    module = Broadcaster()
    traced = module.__call__.get_concrete_function()
    assert "BroadcastArgs" in {op.type for op in traced.graph.get_operations()}
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures=traced)

    model = load_tensorflow(tmp_path / "saved", ConvertOptions())
    assert "BroadcastArgs" not in {node.op_type for node in model.graph}
    rng = np.random.default_rng(3)
    # equal dims, a 1 on either side, a shorter rank on either side, and a 0-sized dim.
    for a_shape, b_shape in [
        ((2, 1, 4), (3, 1)),
        ((1, 3, 1), (1, 5)),
        ((2, 3, 4), (3, 4)),
        ((2, 1, 1), (0, 1)),
        ((4, 1, 2), (1, 1)),
    ]:
        a = rng.standard_normal(a_shape).astype(np.float32)
        b = rng.standard_normal(b_shape).astype(np.float32)
        expected = {k: v.numpy() for k, v in module(tf.constant(a), tf.constant(b)).items()}
        got = run_ir(model, {"a": a, "b": b})
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert got[name].dtype == value.dtype, name
            np.testing.assert_allclose(got[name], value, RTOL, ATOL, err_msg=name)
