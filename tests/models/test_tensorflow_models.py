"""The TensorFlow model suite (issue 11): Keras, PyTorch and TF models through the one IR.

- Keras -> ONNX -> TensorFlow on four Keras 3 models (MobileNetV2 at alpha 0.35, a Sequential
  CNN, LayerNormalization + MultiHeadAttention + exact-gelu Conv1D, Conv1D + LSTM), each checked
  against the Keras model's own outputs (rtol 1e-4, atol 1e-5), with the Transposes added.
- PyTorch -> TensorFlow on the zoo's small CNN and transformer, against eager torch.
- TF -> PyTorch and TF -> Caffe2 (and TF -> TF) from a ``.keras`` file through ``unframe.convert``
  with validation: the Keras model run by TensorFlow against the target's own runtime.
- Every pair goes through the one IR: the IR ``convert`` returns, run by onnxruntime, gives what
  the written model gives.

Weights are random (BatchNorm statistics too, so that eval mode is no identity); sizes are tiny.
TensorFlow and Keras are imported once for the module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

import unframe  # noqa: E402
from tests.keras_fixture import keras_fixture  # noqa: E402, F401 (the keras fixture)
from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402
from unframe.converters.registry import get_framework  # noqa: E402
from unframe.frontends.tensorflow import from_keras  # noqa: E402
from unframe.shared_ir.runner import run_reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _randomize_batchnorm(model: Any, keras: Any) -> None:
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            gamma, beta, mean, variance = shapes
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma),
                    rng.normal(0.0, 0.1, beta),
                    rng.normal(0.0, 0.1, mean),
                    rng.uniform(0.5, 1.5, variance),
                ]
            )


def _mobilenet_v2(keras: Any) -> tuple[Any, tuple[int, ...]]:
    model = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), weights=None, alpha=0.35, classes=10, classifier_activation=None
    )
    return model, (2, 96, 96, 3)


def _sequential_cnn(keras: Any) -> tuple[Any, tuple[int, ...]]:
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(8, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.2),
            layers.Dense(10, name="logits"),
        ]
    )
    return model, (3, 28, 28, 1)


def _attention_gelu(keras: Any) -> tuple[Any, tuple[int, ...]]:
    layers = keras.layers
    tokens = keras.Input((10, 8), name="tokens")
    hidden = layers.Conv1D(8, 3, padding="same", activation="gelu")(tokens)  # exact gelu: Erfc
    hidden = layers.LayerNormalization()(hidden)
    hidden = layers.MultiHeadAttention(num_heads=2, key_dim=4)(hidden, hidden)
    return keras.Model(tokens, layers.Dense(4, name="encoded")(hidden)), (2, 10, 8)


def _conv1d_lstm(keras: Any) -> tuple[Any, tuple[int, ...]]:
    layers = keras.layers
    frames = keras.Input((12, 4), name="frames")
    hidden = layers.Conv1D(6, 3, activation="relu")(frames)
    hidden = layers.LSTM(5)(hidden)
    return keras.Model(frames, layers.Dense(2, name="logits")(hidden)), (3, 12, 4)


KERAS_MODELS: dict[str, Callable[[Any], tuple[Any, tuple[int, ...]]]] = {
    "mobilenet_v2": _mobilenet_v2,
    "sequential_cnn": _sequential_cnn,
    "attention_gelu": _attention_gelu,
    "conv1d_lstm": _conv1d_lstm,
}
#: Transposes the layout pass may add: none where the model takes NHWC images into a Conv
#: (tf2onnx's opening Transpose is absorbed); a Conv1D region is entered and left once.
MAX_TRANSPOSES = {"mobilenet_v2": 0, "sequential_cnn": 0, "attention_gelu": 2, "conv1d_lstm": 2}
#: The output's leading dim where it is not provably the input's batch: MultiHeadAttention's
#: Reshapes fold batch x heads into one dim, which no single symbol names.
OUTPUT_BATCH_DIM = {"attention_gelu": "encoded_dim0"}


def _build_keras(name: str, keras: Any) -> tuple[Any, np.ndarray]:
    keras.utils.set_random_seed(0)
    model, shape = KERAS_MODELS[name](keras)
    _randomize_batchnorm(model, keras)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    return model, x


_ONNX: dict[str, bytes] = {}


def _keras_to_onnx(name: str, model: Any) -> bytes:
    """Keras -> IR -> ONNX bytes (what an .onnx file holds), once per model and session."""
    if name not in _ONNX:
        _ONNX[name] = ir.to_proto(from_keras(model)).SerializeToString()
    return _ONNX[name]


@pytest.mark.parametrize("name", sorted(KERAS_MODELS))
def test_keras_to_onnx_to_tensorflow_matches_keras(name: str, keras: Any) -> None:
    model, x = _build_keras(name, keras)
    expected = model(x, training=False).numpy()
    assert expected.std() > 1e-3, "the reference output is too flat to judge"
    onnx_model = onnx.load_from_string(_keras_to_onnx(name, model))
    # Dynamic dims are named, not tf2onnx's unk__N; the output's batch where inference proves it.
    leading = [
        v.type.tensor_type.shape.dim[0].dim_param
        for v in (*onnx_model.graph.input, *onnx_model.graph.output)
    ]
    assert leading == ["batch", OUTPUT_BATCH_DIM.get(name, "batch")]
    built = to_tensorflow(ir.from_proto(onnx_model))
    assert built.transposes <= MAX_TRANSPOSES[name]
    (got,) = run_built(built, {built.input_names[0]: x}).values()
    np.testing.assert_allclose(got, expected, RTOL, ATOL)


def test_mobilenet_v2_with_layout_nhwc_keeps_its_nhwc_input(keras: Any) -> None:
    """Keras already takes NHWC: --layout nhwc leaves the input as it is, and adds nothing."""
    model, x = _build_keras("mobilenet_v2", keras)
    onnx_model = onnx.load_from_string(_keras_to_onnx("mobilenet_v2", model))
    built = to_tensorflow(ir.from_proto(onnx_model), layout="nhwc")
    shape = built.function.structured_input_signature[0][0].shape.as_list()
    assert shape[1:] == [96, 96, 3]
    assert (built.transposes, built.nhwc_inputs, built.nhwc_outputs) == (0, [], [])
    (got,) = run_built(built, {built.input_names[0]: x}).values()
    np.testing.assert_allclose(got, model(x, training=False).numpy(), RTOL, ATOL)


# -- PyTorch -> TensorFlow --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobilenet", "transformer"])
def test_pytorch_to_tensorflow_matches_torch(name: str) -> None:
    torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")
    from models import torch_zoo as zoo

    from unframe.frontends.pytorch import from_torch

    entry = zoo.ZOO[name]
    module = entry.model()
    model = from_torch(module, entry.inputs(2), dynamic_shapes=entry.dynamic)
    built = to_tensorflow(model)
    if name == "mobilenet":  # images in and logits out: one Transpose into the NHWC region
        assert built.transposes <= 1
    x = entry.inputs(3, seed=7)[0]  # another batch than the export's
    with torch.no_grad():
        expected = module(x).numpy()
    (got,) = run_built(built, {"x": x.numpy()}).values()
    np.testing.assert_allclose(got, expected, RTOL, ATOL)


# -- TF -> PyTorch, Caffe2, TensorFlow through unframe.convert, and the one IR -----------------


@pytest.fixture(scope="module")
def keras_file(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = _build_keras("sequential_cnn", keras)
    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("target", ["pytorch", "caffe2", "tensorflow", "onnx"])
def test_keras_file_converts_through_the_one_ir(
    target: str, keras_file: Path, tmp_path: Path
) -> None:
    suffix = {"pytorch": "pt2", "caffe2": "caffe2", "tensorflow": "savedmodel", "onnx": "onnx"}
    out = tmp_path / f"cnn.{suffix[target]}"
    result = unframe.convert(keras_file, out, validate=True)
    assert result.validation is not None and result.ok, result.validation
    assert result.validation.how.startswith("the source run by tensorflow's runtime")
    assert set(result.steps) >= {"import", "passes", "export"}
    # the IR convert handed the backend, run by onnxruntime, is what the written model runs
    assert isinstance(result.model, ir.Model)
    x = np.random.default_rng(5).standard_normal((2, 28, 28, 1)).astype(np.float32)
    reference = run_reference(result.model, {"image": x})
    assert reference.engine == "onnxruntime", reference.fallback_reason
    written = get_framework(target).run(out, {"image": x})
    (want,) = reference.outputs.values()
    (got,) = written.values()
    np.testing.assert_allclose(got, want, RTOL, ATOL)


def test_saved_model_written_here_converts_back_to_onnx(keras_file: Path, tmp_path: Path) -> None:
    """Keras -> SavedModel -> ONNX: the SavedModel unframe wrote reads back through tf2onnx."""
    saved = tmp_path / "cnn.savedmodel"
    assert unframe.convert(keras_file, saved).ok
    result = unframe.convert(saved, tmp_path / "cnn.onnx", validate=True)
    assert result.ok and result.validation is not None, result.validation
    assert result.validation.how.startswith("the source run by tensorflow's runtime")
