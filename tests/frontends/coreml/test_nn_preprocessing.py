"""NeuralNetwork ``.mlmodel`` image inputs and model kinds, written by coremltools' own
``NeuralNetworkBuilder`` (a third-party producer): RGB and BGR images with a preprocessing
scaler (scale and per-colour biases), a classifier with int64 class labels and a regressor with a
grayscale image, each run in onnxruntime against a numpy computation of its layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.test_neural_network import _numpy_layers, _run
from unframe.backends.coreml.native import coremltools
from unframe.frontends.coreml.driver import load_coreml

HEIGHT, WIDTH = 6, 5
BIASES = {"red": -0.5, "green": 0.25, "blue": 1.5, "gray": -0.75}
SCALE = 1 / 127.5


@pytest.fixture(scope="module")
def builder_module() -> Any:
    coremltools()  # imported quietly, as the frontend does
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    return datatypes, NeuralNetworkBuilder


def _add_conv_flat_dense(
    builder: Any,
    channels: int,
    outputs: int,
    image: str,
    out: str,
    seed: int,
    reverse_channels: bool = False,
) -> None:
    """3x3 ``same`` convolution, ReLU, channel-last flatten, inner product: the oracle's layers."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3, 3, channels, 2)).astype(np.float32)  # (kh, kw, Cin, Cout)
    if reverse_channels:
        weights = weights[:, :, ::-1, :].copy()
    builder.add_convolution(
        "conv", kernel_channels=channels, output_channels=2, height=3, width=3,
        stride_height=1, stride_width=1, border_mode="same", groups=1, W=weights,
        b=rng.standard_normal(2).astype(np.float32), has_bias=True,
        input_name=image, output_name="conv_out",
    )  # fmt: skip
    builder.add_activation("relu", "RELU", "conv_out", "relu_out")
    builder.add_flatten("flat", 1, "relu_out", "flat_out")  # 1: CHANNEL_LAST
    size = 2 * HEIGHT * WIDTH
    builder.add_inner_product(
        "dense", W=rng.standard_normal((outputs, size)).astype(np.float32) / 4,
        b=rng.standard_normal(outputs).astype(np.float32), input_channels=size,
        output_channels=outputs, has_bias=True, input_name="flat_out", output_name=out,
    )  # fmt: skip


def _expected(spec: Any, pixels: np.ndarray, biases: list[float], output: str) -> np.ndarray:
    """The layers in numpy on ``scale * pixels + bias`` (Core ML's scaler, channels as read)."""
    processed = SCALE * pixels + np.asarray(biases, np.float32)[:, None, None]
    plain = spec.__class__()
    plain.CopyFrom(spec)
    del getattr(plain, plain.WhichOneof("Type")).preprocessing[:]  # applied above instead
    return _numpy_layers(plain, processed.astype(np.float32))[output]


@pytest.mark.parametrize("is_bgr", [False, True], ids=["RGB", "BGR"])
def test_color_image_classifier_with_scaler_and_int64_labels(
    builder_module: Any, is_bgr: bool, tmp_path: Path
) -> None:
    datatypes, builder_class = builder_module
    labels = [10, 20, 30, 40]
    builder = builder_class(
        [("image", datatypes.Array(3, HEIGHT, WIDTH))],
        [("probs", datatypes.Array(len(labels)))],
        mode="classifier",
    )
    _add_conv_flat_dense(builder, 3, len(labels), "image", "logits", seed=3)
    builder.add_softmax("softmax", "logits", "probs")
    builder.set_pre_processing_parameters(
        image_input_names=["image"], is_bgr=is_bgr, image_scale=SCALE,
        red_bias=BIASES["red"], green_bias=BIASES["green"], blue_bias=BIASES["blue"],
    )  # fmt: skip
    builder.set_class_labels(labels, predicted_feature_name="classLabel")
    spec = builder.spec
    assert spec.neuralNetworkClassifier.WhichOneof("ClassLabels") == "int64ClassLabels"
    path = tmp_path / "classifier.mlmodel"
    path.write_bytes(spec.SerializeToString())

    model = load_coreml(path)
    color = "BGR" if is_bgr else "RGB"
    assert color in model.metadata_props["coreml.image_input.image"]
    assert [v.name for v in model.graph.outputs] == ["probs", "classLabel"]
    # The tensor's channels are in the order the network reads them, so are the biases.
    order = ["blue", "green", "red"] if is_bgr else ["red", "green", "blue"]
    pixels = np.random.default_rng(7).uniform(0, 255, (3, HEIGHT, WIDTH)).astype(np.float32)
    probabilities, label = _run(model, {"image": pixels[None]})
    expected = _expected(spec, pixels, [BIASES[c] for c in order], "probs")
    np.testing.assert_allclose(probabilities[0], expected, rtol=1e-4, atol=1e-5)
    assert label.dtype == np.int64
    assert label.tolist() == [labels[int(np.argmax(expected))]]


def test_bgr_network_on_reversed_channels_equals_rgb_network(
    builder_module: Any, tmp_path: Path
) -> None:
    """An RGB network, and the same network for BGR (its kernels' input channels reversed), fed
    one image in each's channel order: same scores, if each bias lands on its own colour."""
    datatypes, builder_class = builder_module
    pixels_rgb = np.random.default_rng(9).uniform(0, 255, (3, HEIGHT, WIDTH)).astype(np.float32)
    scores = {}
    for is_bgr in (False, True):
        builder = builder_class(
            [("image", datatypes.Array(3, HEIGHT, WIDTH))], [("score", datatypes.Array(3))]
        )
        _add_conv_flat_dense(builder, 3, 3, "image", "score", seed=5, reverse_channels=is_bgr)
        builder.set_pre_processing_parameters(
            image_input_names=["image"], is_bgr=is_bgr, image_scale=SCALE,
            red_bias=BIASES["red"], green_bias=BIASES["green"], blue_bias=BIASES["blue"],
        )  # fmt: skip
        path = tmp_path / f"{'bgr' if is_bgr else 'rgb'}.mlmodel"
        path.write_bytes(builder.spec.SerializeToString())
        pixels = pixels_rgb[::-1].copy() if is_bgr else pixels_rgb
        (scores[is_bgr],) = _run(load_coreml(path), {"image": pixels[None]})
    np.testing.assert_allclose(scores[True], scores[False], rtol=1e-4, atol=1e-5)


def test_regressor_with_grayscale_image_and_gray_bias(builder_module: Any, tmp_path: Path) -> None:
    datatypes, builder_class = builder_module
    builder = builder_class(
        [("image", datatypes.Array(1, HEIGHT, WIDTH))],
        [("value", datatypes.Array(2))],
        mode="regressor",
    )
    _add_conv_flat_dense(builder, 1, 2, "image", "value", seed=11)
    builder.set_pre_processing_parameters(
        image_input_names=["image"], is_bgr=False, gray_bias=BIASES["gray"], image_scale=SCALE
    )
    spec = builder.spec
    assert spec.WhichOneof("Type") == "neuralNetworkRegressor"
    assert spec.description.input[0].type.imageType.colorSpace == 10  # GRAYSCALE
    path = tmp_path / "regressor.mlmodel"
    path.write_bytes(spec.SerializeToString())

    model = load_coreml(path)
    assert "GRAYSCALE" in model.metadata_props["coreml.image_input.image"]
    pixels = np.random.default_rng(13).uniform(0, 255, (1, HEIGHT, WIDTH)).astype(np.float32)
    (value,) = _run(model, {"image": pixels[None]})
    expected = _expected(spec, pixels, [BIASES["gray"]], "value")
    np.testing.assert_allclose(value.reshape(-1), expected, rtol=1e-4, atol=1e-5)
