"""Dynamic dims of Keras models converted through tf2onnx get stable names, not ``unk__N``.

Real Keras 3 models; the ONNX files run on onnxruntime at sizes other than the traced ones,
compared with the Keras model itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from tests.keras_fixture import keras_fixture  # noqa: E402, F401 (the keras fixture)
from unframe.frontends.tensorflow import from_keras, load_tensorflow  # noqa: E402
from unframe.shared_ir.options import ConvertOptions  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _dims(values: Any) -> dict[str, list[int | str | None]]:
    return {
        value.name: [d if isinstance(d, int) else d.value for d in value.shape] for value in values
    }


def _sequence_and_extra(keras: Any) -> Any:
    """Two inputs with a dynamic batch, one with a dynamic length; one output per input's path."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((None, 8), name="tokens")
    extra = keras.Input((4,), name="extra")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(4)(tokens))
    summed = keras.layers.Add(name="summed")([pooled, extra])
    per_step = keras.layers.Dense(3, name="per_step")(tokens)
    return keras.Model([tokens, extra], [summed, per_step])


def test_shared_batch_and_dims_inference_proves_equal(keras: Any) -> None:
    model = _sequence_and_extra(keras)
    converted = from_keras(model)
    assert _dims(converted.graph.inputs) == {
        "tokens": ["batch", "tokens_dim1", 8],
        "extra": ["batch", 4],
    }
    # The Dense over a sequence is a Reshape/MatMul/Reshape: onnx's inference proves its output
    # is (batch, tokens_dim1, 3); the pooled sum keeps the batch.
    assert _dims(converted.graph.outputs) == {
        "summed": ["batch", 4],
        "per_step": ["batch", "tokens_dim1", 3],
    }
    assert not any(
        isinstance(d, ir.SymbolicDim) and (d.value or "").startswith("unk__")
        for value in (*converted.graph.inputs, *converted.graph.outputs)
        for d in value.shape or ()
    )
    session = ort.InferenceSession(
        ir.to_proto(converted).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(1)
    for batch, length in ((1, 3), (5, 11)):
        tokens = rng.normal(size=(batch, length, 8)).astype(np.float32)
        extra = rng.normal(size=(batch, 4)).astype(np.float32)
        got = session.run(None, {"tokens": tokens, "extra": extra})
        want = model([tokens, extra], training=False)
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual, np.asarray(expected), rtol=RTOL, atol=ATOL)


def test_no_shared_batch_when_an_input_has_a_fixed_leading_dim(keras: Any) -> None:
    keras.utils.set_random_seed(0)
    image = keras.Input((None, None, 3), name="image")
    scale = keras.Input((3,), batch_size=1, name="scale")
    features = keras.layers.Conv2D(4, 3, name="conv")(image)
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled")(image)
    model = keras.Model(
        [image, scale], [features, keras.layers.Multiply(name="scaled")([pooled, scale])]
    )
    converted = from_keras(model)
    assert _dims(converted.graph.inputs) == {
        "image": ["image_dim0", "image_dim1", "image_dim2", 3],
        "scale": [1, 3],
    }
    outputs = _dims(converted.graph.outputs)
    # A valid 3x3 Conv shrinks the spatial dims (no name for dim - 2): they are named after the
    # output; its batch is the input's, which inference proves.
    assert outputs["conv"] == ["image_dim0", "conv_dim1", "conv_dim2", 4]


def test_saved_model_signature_dims_are_named(keras: Any, tmp_path: Path) -> None:
    model = _sequence_and_extra(keras)
    saved = tmp_path / "saved"
    model.export(str(saved), verbose=False)
    converted = load_tensorflow(saved, ConvertOptions())
    dims = _dims(converted.graph.inputs)
    assert dims == {"tokens": ["batch", "tokens_dim1", 8], "extra": ["batch", 4]}
    assert sorted(map(str, _dims(converted.graph.outputs).values())) == [
        "['batch', 'tokens_dim1', 3]",
        "['batch', 4]",
    ]


def test_batch_is_proved_through_reshapes_of_a_one_channel_image(keras: Any) -> None:
    """tf2onnx writes the NHWC -> NCHW Transpose of a one-channel image as Reshape(-1, 1, H, W),
    whose -1 onnx's inference cannot name: the frontend proves it is the batch."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1), name="digits"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="softmax", name="probabilities"),
        ]
    )
    converted = from_keras(model)
    assert any(node.op_type == "Reshape" for node in converted.graph)
    assert _dims(converted.graph.inputs) == {"digits": ["batch", 12, 12, 1]}
    assert _dims(converted.graph.outputs) == {"probabilities": ["batch", 5]}
    session = ort.InferenceSession(
        ir.to_proto(converted).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(4).normal(size=(3, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(
        session.run(None, {"digits": x})[0], np.asarray(model(x)), rtol=RTOL, atol=ATOL
    )


def test_real_keras_file_dims(tmp_path: Path) -> None:
    from helpers import SHARED_FIXTURES

    path = SHARED_FIXTURES / "tensorflow" / "digits_cnn.keras"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared fixtures are not checked out beside the repo)")
    converted = load_tensorflow(path, ConvertOptions())
    assert _dims(converted.graph.inputs) == {"input_layer": ["batch", 28, 28, 1]}
    assert _dims(converted.graph.outputs) == {"dense_1": ["batch", 10]}
