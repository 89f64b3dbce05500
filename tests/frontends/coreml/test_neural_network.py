"""NeuralNetwork ``.mlmodel`` files: the two real files of ../shared/fixtures/coreml import, run in
onnxruntime and match a plain numpy computation of their layers from the spec's own weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

from tests.helpers import SHARED_FIXTURES
from unframe.backends.coreml.native import load_spec
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.errors import BadInputError, UnsupportedError, UnsupportedOpsError

FIXTURES = SHARED_FIXTURES / "coreml"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"the shared Core ML fixtures are not at {FIXTURES}"
)


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Core ML's ``same`` padding (BOTTOM_RIGHT_HEAVY): the odd pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _numpy_layers(spec: Any, image: np.ndarray) -> dict[str, np.ndarray]:
    """The fixtures' layer kinds computed directly from the spec, on (C, H, W) blobs."""
    network = getattr(spec, spec.WhichOneof("Type"))
    scaler = network.preprocessing[0].scaler if network.preprocessing else None
    name = spec.description.input[0].name
    blobs = {name: image * (scaler.channelScale if scaler else 1.0)}
    for layer in network.layers:
        kind = layer.WhichOneof("layer")
        x, p = blobs[layer.input[0]], getattr(layer, kind)
        if kind == "convolution":
            kh, kw = p.kernelSize
            w = np.asarray(p.weights.floatValue, np.float32).reshape(
                p.outputChannels, p.kernelChannels, kh, kw
            )
            (top, bottom), (left, right) = (
                _same_pads(x.shape[1], kh, 1),
                _same_pads(x.shape[2], kw, 1),
            )
            padded = np.pad(x, ((0, 0), (top, bottom), (left, right)))
            windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
            y = np.einsum("chwij,ocij->ohw", windows, w)
            y = y + np.asarray(p.bias.floatValue, np.float32)[:, None, None]
        elif kind == "activation":
            y = np.maximum(x, 0)
        elif kind == "pooling":
            kh, kw = p.kernelSize
            c, h, w_ = x.shape
            y = x[:, : h // kh * kh, : w_ // kw * kw].reshape(c, h // kh, kh, w_ // kw, kw)
            y = y.max(axis=(2, 4))
        elif kind == "flatten":
            y = x.transpose(1, 2, 0).reshape(-1)  # CHANNEL_LAST
        elif kind == "innerProduct":
            w = np.asarray(p.weights.floatValue, np.float32).reshape(
                p.outputChannels, p.inputChannels
            )
            y = w @ x + np.asarray(p.bias.floatValue, np.float32)
        elif kind == "softmax":
            e = np.exp(x - x.max())
            y = e / e.sum()
        else:
            raise AssertionError(f"the oracle does not compute {kind}")
        blobs[layer.output[0]] = y.astype(np.float32)
    return blobs


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString())
    return session.run(None, feeds)


@needs_fixtures
def test_mnist_classifier_matches_numpy_of_its_layers() -> None:
    path = FIXTURES / "MNIST.mlmodel"
    model = load_coreml(path)
    assert [v.name for v in model.graph.inputs] == ["image"]
    assert [v.name for v in model.graph.outputs] == ["output", "classLabel"]
    assert "GRAYSCALE" in model.metadata_props["coreml.image_input.image"]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1, 28, 28)).astype(np.float32)
    image[:, 8:20, 12:16] = 255.0  # a stroke, so that one class stands out
    probabilities, label = _run(model, {"image": image[None]})
    expected = _numpy_layers(load_spec(path), image)["output"]
    np.testing.assert_allclose(probabilities[0], expected, rtol=1e-4, atol=1e-5)
    assert label.tolist() == [str(int(np.argmax(expected)))]


@needs_fixtures
def test_drawing_embedding_with_image_input_matches_numpy_of_its_layers() -> None:
    path = FIXTURES / "TinyDrawingEmbedding.mlmodel"
    model = load_coreml(path)
    image = np.random.default_rng(1).uniform(0, 255, size=(1, 28, 28)).astype(np.float32)
    (embedding,) = _run(model, {"drawing": image[None]})
    expected = _numpy_layers(load_spec(path), image)["embedding"]
    assert embedding.shape == (1, 128)
    # No scaler: pixels of 0-255 give embeddings in the thousands, where float32 sums in another
    # order differ by ~1e-7 of the largest; the tolerance scales with it.
    atol = 1e-6 * float(np.abs(expected).max())
    np.testing.assert_allclose(embedding[0], expected, rtol=1e-4, atol=atol)


@needs_fixtures
def test_unsupported_layers_are_listed_at_once(tmp_path: Path) -> None:
    spec = load_spec(FIXTURES / "MNIST.mlmodel")
    layers = spec.neuralNetworkClassifier.layers
    layers[1].l2normalize.epsilon = 1e-6  # replaces the ReLU activation
    layers[4].permute.axis.extend([0, 1, 3, 2])
    path = tmp_path / "edited.mlmodel"
    path.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedOpsError) as caught:
        load_coreml(path)
    listed = {(op.node, op.op_type) for op in caught.value.ops}
    assert listed == {
        ("conv2d_1__activation__", "l2normalize"),
        ("conv2d_2__activation__", "permute"),
    }
    assert caught.value.exit_code == 3


def test_model_type_not_read_is_unsupported(tmp_path: Path) -> None:
    from unframe.backends.coreml.native import coremltools

    spec = coremltools().proto.Model_pb2.Model()
    spec.specificationVersion = 1
    spec.glmRegressor.offset.append(1.0)
    path = tmp_path / "linear.mlmodel"
    path.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedError, match="glmRegressor") as caught:
        load_coreml(path)
    assert caught.value.exit_code == 3


def test_file_that_is_not_a_spec_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.mlmodel"
    path.write_bytes(b"\xff\xff\xff not a protobuf")
    with pytest.raises(BadInputError) as caught:
        load_coreml(path)
    assert caught.value.exit_code == 2
