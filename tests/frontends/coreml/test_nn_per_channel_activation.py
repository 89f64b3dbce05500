"""NeuralNetwork ``PReLU`` and ``parametricSoftplus`` activations on blobs of every rank Core ML
gives them, written by coremltools' own ``NeuralNetworkBuilder`` (a third-party producer) and run
in onnxruntime against values computed by hand from Core ML's rule (NeuralNetwork.proto): alpha
and beta, of length C or 1, run along the channel axis, the -3 axis of the (C, H, W) blob.

The IR holds the legacy layout's (C, H, W) as (1, C, H, W) and its (S, B, C, H, W) as
(1, S, B, C, H, W); the exact mapping keeps the declared rank; a rank-1 [C] input is Core ML's
(C, 1, 1) blob, held as (batch, C). Before the fix, the rank-6 and exact rank-3 blobs had their
parameters along the wrong axis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.test_neural_network import _run
from unframe.backends.coreml.native import coremltools
from unframe.frontends.coreml.driver import load_coreml

C, H, W = 3, 2, 4

#: (input shape as declared, EXACT_ARRAY_MAPPING, the shape the IR gives it, its channel axis).
_BLOBS = [
    ((C,), False, (1, C), -1),
    ((C, H, W), False, (1, C, H, W), -3),
    ((2, 1, C, H, W), False, (1, 2, 1, C, H, W), -3),
    ((C, H, W), True, (C, H, W), -3),
    ((2, C, H, W), True, (2, C, H, W), -3),
]
_IDS = ["C", "CHW", "SBCHW", "exact_CHW", "exact_BCHW"]


@pytest.fixture(scope="module")
def builder_module() -> Any:
    coremltools()  # imported quietly, as the frontend does
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    return datatypes, NeuralNetworkBuilder


def _activation(
    builder_module: Any, declared: tuple[int, ...], exact: bool, kind: str, params: Any, path: Path
) -> Any:
    datatypes, builder_class = builder_module
    builder = builder_class(
        [("x", datatypes.Array(*declared))],
        [("y", datatypes.Array(*declared))],
        disable_rank5_shape_mapping=exact,
    )
    builder.add_activation("act", kind, input_name="x", output_name="y", params=params)
    path.write_bytes(builder.spec.SerializeToString())
    return load_coreml(path)


@pytest.mark.parametrize("channels", [C, 1], ids=["alpha_C", "alpha_1"])
@pytest.mark.parametrize(("declared", "exact", "held", "axis"), _BLOBS, ids=_IDS)
def test_prelu_runs_along_the_channel_axis(
    builder_module: Any,
    declared: tuple[int, ...],
    exact: bool,
    held: tuple[int, ...],
    axis: int,
    channels: int,
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    alpha = rng.uniform(0.1, 0.9, channels).astype(np.float32)
    model = _activation(builder_module, declared, exact, "PRELU", alpha, tmp_path / "p.mlmodel")
    x = rng.standard_normal(held).astype(np.float32)
    (y,) = _run(model, {"x": x.astype(np.float64)})  # declared double
    expected = np.empty(held, np.float32)
    for index in np.ndindex(*held):
        value = float(x[index])
        slope = float(alpha[index[axis] % channels])
        expected[index] = value if value >= 0 else slope * value
    assert y.shape == held
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("declared", "exact", "held", "axis"), _BLOBS, ids=_IDS)
def test_parametric_softplus_runs_along_the_channel_axis(
    builder_module: Any,
    declared: tuple[int, ...],
    exact: bool,
    held: tuple[int, ...],
    axis: int,
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    alpha = rng.uniform(0.5, 2.0, C).astype(np.float32)
    beta = rng.uniform(0.5, 2.0, C).astype(np.float32)
    model = _activation(
        builder_module, declared, exact, "PARAMETRICSOFTPLUS", [alpha, beta],
        tmp_path / "s.mlmodel",
    )  # fmt: skip
    x = rng.standard_normal(held).astype(np.float32)
    (y,) = _run(model, {"x": x.astype(np.float64)})  # declared double
    expected = np.empty(held, np.float32)
    for index in np.ndindex(*held):  # alpha * log(1 + exp(beta * x)), channel by channel
        c = index[axis]
        expected[index] = float(alpha[c]) * math.log1p(math.exp(float(beta[c]) * float(x[index])))
    assert y.shape == held
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
