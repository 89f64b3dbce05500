"""NeuralNetwork ``scale`` and ``bias`` layers on blobs of the ranks Core ML gives them,
written by coremltools' own ``NeuralNetworkBuilder`` (a third-party producer) and run in
onnxruntime against numpy values computed by hand from Core ML's rule: the parameter, of shape
[1], [C], [1, H, W] or [C, H, W], is read as (C, H, W) against the blob's (C, H, W).

A rank-1 input [C] is Core ML's (C, 1, 1) blob, and so is an inner product's output: the IR
holds both as (batch, C), where a [C] parameter must run along C, not open new axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.test_neural_network import _run
from unframe.backends.coreml.native import coremltools
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.errors import BadInputError

C, H, W = 3, 4, 5


@pytest.fixture(scope="module")
def builder_module() -> Any:
    coremltools()  # imported quietly, as the frontend does
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    return datatypes, NeuralNetworkBuilder


def _write(builder: Any, path: Path) -> Path:
    path.write_bytes(builder.spec.SerializeToString())
    return path


def _scale_with_bias(
    builder: Any,
    gamma: np.ndarray,
    beta: np.ndarray,
    shape_scale: list[int],
    shape_bias: list[int],
    tmp_path: Path,
) -> Any:
    """``builder``'s one layer, x -> y, a scale with bias; the package written and imported."""
    builder.add_scale(
        "scale", W=gamma, b=beta, has_bias=True, input_name="x", output_name="y",
        shape_scale=shape_scale, shape_bias=shape_bias,
    )  # fmt: skip
    return load_coreml(_write(builder, tmp_path / "scale.mlmodel"))


@pytest.mark.parametrize(
    ("shape_scale", "shape_bias"),
    [([C], [C]), ([1], [C]), ([C, 1, 1], [1])],
    ids=["scale_C_bias_C", "scale_1_bias_C", "scale_C11_bias_1"],
)
def test_scale_with_bias_on_rank1_input(
    builder_module: Any, shape_scale: list[int], shape_bias: list[int], tmp_path: Path
) -> None:
    datatypes, builder_class = builder_module
    rng = np.random.default_rng(1)
    gamma = rng.standard_normal(int(np.prod(shape_scale))).astype(np.float32)
    beta = rng.standard_normal(int(np.prod(shape_bias))).astype(np.float32)
    builder = builder_class([("x", datatypes.Array(C))], [("y", datatypes.Array(C))])
    model = _scale_with_bias(builder, gamma, beta, shape_scale, shape_bias, tmp_path)
    x = rng.standard_normal(C).astype(np.float32)
    (y,) = _run(model, {"x": x[None].astype(np.float64)})  # declared double
    # Each channel c: x[c] * gamma[c or 0] + beta[c or 0], whatever shape holds them.
    expected = x * gamma.reshape(-1) + beta.reshape(-1)
    assert y.shape == (1, C)
    np.testing.assert_allclose(y[0], expected, rtol=1e-6, atol=1e-6)


#: (input shape as declared, EXACT_ARRAY_MAPPING, the shape the IR gives it): the legacy layout
#: takes a rank-3 (C, H, W) or rank-5 (S, B, C, H, W) input and adds a batch; the exact mapping
#: (spec 4+) takes any rank as it is, and the scale layer reads its last three axes as C, H, W.
_BLOBS = [
    ((C, H, W), False, (1, C, H, W)),
    ((2, 1, C, H, W), False, (1, 2, 1, C, H, W)),
    ((C, H, W), True, (C, H, W)),
    ((2, C, H, W), True, (2, C, H, W)),
]


@pytest.mark.parametrize(
    ("declared", "exact", "held"), _BLOBS, ids=["CHW", "SBCHW", "exact_CHW", "exact_BCHW"]
)
@pytest.mark.parametrize(
    ("shape_scale", "shape_bias"),
    [([C], [C]), ([1, H, W], [C, H, W]), ([C, H, W], [1])],
    ids=["scale_C_bias_C", "scale_1HW_bias_CHW", "scale_CHW_bias_1"],
)
def test_scale_with_bias_on_blobs_of_rank_3_and_more(
    builder_module: Any,
    declared: tuple[int, ...],
    exact: bool,
    held: tuple[int, ...],
    shape_scale: list[int],
    shape_bias: list[int],
    tmp_path: Path,
) -> None:
    datatypes, builder_class = builder_module
    rng = np.random.default_rng(2)
    gamma = rng.standard_normal(shape_scale).astype(np.float32)
    beta = rng.standard_normal(shape_bias).astype(np.float32)
    builder = builder_class(
        [("x", datatypes.Array(*declared))],
        [("y", datatypes.Array(*declared))],
        disable_rank5_shape_mapping=exact,
    )
    model = _scale_with_bias(builder, gamma, beta, shape_scale, shape_bias, tmp_path)
    x = rng.standard_normal(held).astype(np.float32)
    (y,) = _run(model, {"x": x.astype(np.float64)})  # declared double
    # Core ML reads each parameter as (C', H', W'), a [C] one as (C, 1, 1); an axis of 1 repeats.
    g = gamma.reshape(shape_scale + [1] * (3 - len(shape_scale)))
    b = beta.reshape(shape_bias + [1] * (3 - len(shape_bias)))
    expected = np.empty(held, np.float32)
    for index in np.ndindex(*held):
        c, h, w = index[-3:]
        scale = g[c % g.shape[0], h % g.shape[1], w % g.shape[2]]
        expected[index] = x[index] * scale + b[c % b.shape[0], h % b.shape[1], w % b.shape[2]]
    assert y.shape == held
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape_bias", [[C], [C, 1, 1]], ids=["bias_C", "bias_C11"])
def test_bias_after_inner_product(
    builder_module: Any, shape_bias: list[int], tmp_path: Path
) -> None:
    """An inner product's (C, 1, 1) output, held as (batch, C), then a bias and a scale on it."""
    datatypes, builder_class = builder_module
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((C, 2 * C)).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    gamma = rng.standard_normal(C).astype(np.float32)
    builder = builder_class([("x", datatypes.Array(2 * C))], [("y", datatypes.Array(C))])
    builder.add_inner_product(
        "dense", W=weights, b=None, input_channels=2 * C, output_channels=C, has_bias=False,
        input_name="x", output_name="dense_out",
    )  # fmt: skip
    builder.add_bias("bias", b=beta, input_name="dense_out", output_name="biased",
                     shape_bias=shape_bias)  # fmt: skip
    builder.add_scale("scale", W=gamma, b=None, has_bias=False, input_name="biased",
                      output_name="y", shape_scale=[C])  # fmt: skip
    model = load_coreml(_write(builder, tmp_path / "dense_bias.mlmodel"))
    x = rng.standard_normal(2 * C).astype(np.float32)
    (y,) = _run(model, {"x": x[None].astype(np.float64)})  # declared double
    expected = [
        (sum(float(weights[c, k]) * float(x[k]) for k in range(2 * C)) + beta[c]) * gamma[c]
        for c in range(C)
    ]
    assert y.shape == (1, C)
    np.testing.assert_allclose(y[0], np.asarray(expected, np.float32), rtol=1e-5, atol=1e-5)


def test_bias_with_spatial_extent_on_flat_blob_is_bad_input(
    builder_module: Any, tmp_path: Path
) -> None:
    """A [C, H, W] bias with H, W > 1 on a (C, 1, 1) blob: Core ML rejects it; so does unframe."""
    datatypes, builder_class = builder_module
    builder = builder_class([("x", datatypes.Array(C))], [("y", datatypes.Array(C))])
    beta = np.zeros((C, 2, 2), np.float32)
    builder.add_bias("bias", b=beta, input_name="x", output_name="y", shape_bias=[C, 2, 2])
    with pytest.raises(BadInputError, match=r"bias 'bias'.*\[3, 2, 2\].*rank 2"):
        load_coreml(_write(builder, tmp_path / "bad_bias.mlmodel"))
