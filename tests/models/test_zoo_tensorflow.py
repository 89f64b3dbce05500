"""PyTorch -> TensorFlow and PyTorch -> TFLite on the PyTorch suite's CNNs and transformers.

Each model (the zoo's ResNet, U-Net, LSTM and GRU, tiny BERT and GPT-2 from ``transformers``
configs; the zoo's MobileNet and transformer run in TF in ``test_tensorflow_models.py``) is
exported by the PyTorch frontend with its dynamic axes, written by ``unframe.convert`` and run by
the target's own runtime with no unframe in the loop: the SavedModel by ``tf.saved_model.load``
(its ``serving_default`` signature), the ``.tflite`` by LiteRT's interpreter (its signature
runner). The oracle is eager torch, at another batch (and sequence length) than the export's.
Every model converts to TFLite with its dynamic dims now (the refusals pinned here before are
gone, see ``TFLITE_CONVERTS``); a refusal that dynamic dims cause, and its message naming them, is
tested on a small model in ``tests/backends/tflite/test_tflite_dynamic_dims.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")

from models.test_torch_models import TRANSFORMERS  # noqa: E402
from models.zoo_sources import _Case, source_cases  # noqa: E402

import unframe  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
ZOO_MODELS = ("resnet", "unet", "lstm", "gru")
NAMES = (*ZOO_MODELS, *sorted(TRANSFORMERS))

# Each of these was refused with dynamic dims until 2026-12-06:
# lstm and gru: recurrent.py grows each step's output into a tensor (``ops/_stacks.py``), as
# TFLite holds no TensorList at dynamic shapes.
# unet: the Resize to run-time sizes gives back the dims ONNX knows (a Conv2D needs its depth);
# transformer: a Squeeze of unit axes with dynamic dims is a Reshape (TFLiteConverter's rewrite
# of nn.MultiheadAttention's Unsqueeze, Transpose, Squeeze writes an invalid tfl.squeeze).
TFLITE_CONVERTS = (
    "resnet",
    "mobilenet",
    "unet",
    "transformer",
    "lstm",
    "gru",
    *sorted(TRANSFORMERS),
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], _Case]:
    return source_cases(tmp_path_factory)


@pytest.fixture(scope="module")
def tf() -> Any:
    return import_tensorflow()


@pytest.mark.parametrize("name", NAMES)
def test_pytorch_to_saved_model_runs_in_tensorflow(
    name: str, tf: Any, case: Callable[[str], _Case], tmp_path: Path
) -> None:
    source = case(name)
    saved = tmp_path / f"{name}.savedmodel"
    assert unframe.convert(source.onnx_path, saved, target="tensorflow").ok
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.name == source.input_name
    assert spec.shape[0] is None  # the dynamic batch stays dynamic
    for x in source.run_inputs:
        outputs = signature(**{source.input_name: tf.constant(x.numpy())})
        (got,) = (value.numpy() for value in outputs.values())
        np.testing.assert_allclose(got, source.expected(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", TFLITE_CONVERTS)
def test_pytorch_to_tflite_runs_on_litert(
    name: str, case: Callable[[str], _Case], tmp_path: Path
) -> None:
    pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
    from ai_edge_litert.interpreter import Interpreter

    source = case(name)
    written = tmp_path / f"{name}.tflite"
    assert unframe.convert(source.onnx_path, written, target="tflite").ok
    runner = Interpreter(model_path=str(written)).get_signature_runner("serving_default")
    assert list(runner.get_input_details()) == [source.input_name]
    for x in source.run_inputs:  # the signature runner resizes the dynamic dims
        (got,) = runner(**{source.input_name: x.numpy()}).values()
        np.testing.assert_allclose(got, source.expected(x), rtol=RTOL, atol=ATOL)
