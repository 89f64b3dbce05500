"""Core ML backend: edge cases of Mod and BitShift, ai.onnx.ml's Binarizer and
ArrayFeatureExtractor, and the preview training optimizers, each exported to .mlpackage,
re-imported through the frontend and run on onnxruntime, against onnxruntime on the source model
(onnx's reference implementation for the training ops, which onnxruntime does not run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def one_node(
    op: str,
    inputs: Sequence[tuple[str, int, Sequence[int]]],
    outputs: Sequence[str],
    opsets: dict[str, int],
    domain: str = "",
    output_type: int = TensorProto.FLOAT,
    **attributes: Any,
) -> ir.Model:
    node = helper.make_node(
        op, [n for n, _, _ in inputs], list(outputs), domain=domain, **attributes
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, output_type, None) for n in outputs],
    )
    imports = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    return ir.from_proto(helper.make_model(graph, opset_imports=imports))


def exported(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return CoreMLFramework().run_ir(model, feeds)


def check_against(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, want in expected.items():
        assert actual[name].dtype == want.dtype, name
        np.testing.assert_allclose(actual[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


def onnxruntime_on(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)


def test_mod_by_an_infinite_divisor_keeps_the_dividend_or_takes_the_divisor() -> None:
    x = np.array([0, -3, 3, -1, 1, 2.5, np.inf, 1, np.nan, 7.5, -7.5], np.float32)
    y = np.array([np.inf, np.inf, np.inf, -np.inf, -np.inf, 0, 2, np.nan, 2, -2, 2], np.float32)
    model = one_node(
        "Mod",
        [("x", TensorProto.FLOAT, [11]), ("y", TensorProto.FLOAT, [11])],
        ["z"],
        {"": 28},
        fmod=0,  # floats with fmod=0 from opset 28
    )
    feeds = {"x": x, "y": y}
    check_against(onnxruntime_on(model, feeds), exported(model, feeds))


@pytest.mark.parametrize("dtype", [TensorProto.INT32, TensorProto.INT8])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_by_every_width_and_out_of_range(dtype: int, direction: str) -> None:
    numpy_type = {TensorProto.INT32: np.int32, TensorProto.INT8: np.int8}[dtype]
    bits = np.iinfo(numpy_type).bits
    shifts = np.array([-1, -40, 0, 1, 7, bits - 1, bits, bits + 3, 100], numpy_type)
    x = np.array([-8, 5, -1, 3, -7, -1, 9, -9, 1], numpy_type)
    model = one_node(
        "BitShift",
        [("x", dtype, [9]), ("s", dtype, [9])],
        ["z"],
        {"": 28},  # signed types from opset 28
        output_type=dtype,
        direction=direction,
    )
    # onnxruntime: every bit shifted out by a shift outside [0, width): 0, or the sign (RIGHT).
    feeds = {"x": x, "s": shifts}
    check_against(onnxruntime_on(model, feeds), exported(model, feeds))


def test_binarizer_and_array_feature_extractor_match_onnxruntime() -> None:
    rng = np.random.default_rng(0)
    opsets = {"": 13, "ai.onnx.ml": 1}
    model = one_node(
        "Binarizer",
        [("x", TensorProto.FLOAT, [3, 4])],
        ["y"],
        opsets,
        "ai.onnx.ml",
        threshold=0.25,
    )
    feeds = {"x": rng.standard_normal((3, 4)).astype(np.float32)}
    check_against(onnxruntime_on(model, feeds), exported(model, feeds))
    for shape in ([3, 5], [5]):
        model = one_node(
            "ArrayFeatureExtractor",
            [("x", TensorProto.FLOAT, shape), ("i", TensorProto.INT64, [2, 2])],
            ["y"],
            opsets,
            "ai.onnx.ml",
        )
        feeds = {
            "x": rng.standard_normal(shape).astype(np.float32),
            "i": np.array([[4, 0], [2, 2]], np.int64),
        }
        check_against(onnxruntime_on(model, feeds), exported(model, feeds))


_TRAINING = {"": 13, "ai.onnx.preview.training": 1}


@pytest.mark.parametrize("step", [0, 3])
@pytest.mark.parametrize(
    ("op", "operands", "attributes"),
    [
        ("Adagrad", 3, {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.01}),
        (
            "Adam",
            4,
            {
                "alpha": 0.9,
                "beta": 0.8,
                "epsilon": 1e-3,
                "norm_coefficient": 0.01,
                "norm_coefficient_post": 0.05,
            },
        ),
        ("Momentum", 3, {"alpha": 0.9, "beta": 0.5, "mode": "standard", "norm_coefficient": 0.02}),
        ("Momentum", 3, {"alpha": 0.9, "beta": 0.5, "mode": "nesterov", "norm_coefficient": 0.02}),
    ],
)
def test_training_optimizers_match_onnx_reference(
    op: str, operands: int, attributes: dict[str, Any], step: int
) -> None:
    """Two tensors updated at once, at the first step (T = 0: no bias correction) and after."""
    rng = np.random.default_rng(step)
    shapes = [[3], [2, 2]]
    inputs = [("R", TensorProto.FLOAT, []), ("T", TensorProto.INT64, [])]
    feeds: dict[str, np.ndarray] = {"R": np.array(0.1, np.float32), "T": np.array(step, np.int64)}
    for k in range(operands):
        for i, shape in enumerate(shapes):
            name = f"in{k}_{i}"
            inputs.append((name, TensorProto.FLOAT, shape))
            values = rng.standard_normal(shape).astype(np.float32)
            feeds[name] = np.abs(values) if k == operands - 1 and op != "Momentum" else values
    outputs = [f"out{k}_{i}" for k in range(operands - 1) for i in range(len(shapes))]
    model = one_node(op, inputs, outputs, _TRAINING, "ai.onnx.preview.training", **attributes)
    reference = ReferenceEvaluator(ir.to_proto(model))
    expected = dict(zip(outputs, reference.run(None, feeds), strict=True))
    actual = exported(model, feeds)
    assert list(actual) == outputs
    for name in outputs:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("...ii->...i", [[3, 4, 4]]),
        ("ii", [[5, 5]]),  # the trace
        ("iji->j", [[3, 2, 3]]),
        ("...ij,...jk->...ik", [[2, 3, 4], [1, 4, 5]]),  # the ellipsis dims broadcast
        ("...ij,jk", [[2, 1, 3, 4], [4, 2]]),  # implicit output: the ellipsis's dims first
        ("bii,bi->b", [[2, 3, 3], [2, 3]]),
    ],
)
def test_einsum_with_ellipses_and_diagonals(equation: str, shapes: list[list[int]]) -> None:
    rng = np.random.default_rng(4)
    inputs = [(f"x{i}", TensorProto.FLOAT, shape) for i, shape in enumerate(shapes)]
    model = one_node("Einsum", inputs, ["y"], {"": 12}, equation=equation)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, _, shape in inputs}
    check_against(onnxruntime_on(model, feeds), exported(model, feeds))


def _reduce_at_run_time_axes(op: str, shape: list[int], axes_count: int, keepdims: int) -> ir.Model:
    """``op`` over axes given at run time, then Abs, with no shape declared after the input:
    the rank and dims of the result are found at run time."""
    graph = helper.make_graph(
        [
            helper.make_node(op, ["x", "axes"], ["r"], keepdims=keepdims),
            helper.make_node("Abs", ["r"], ["y"]),
        ],
        "reduce",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("axes", TensorProto.INT64, [axes_count]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize(
    ("op", "shape", "axes"),
    [
        ("ReduceSum", [2, 3, 4], [2, 0]),
        ("ReduceLogSumExp", [2, 3, 4], [-2]),
        ("ReduceL2", [2, 3, 4, 5], [3, 1, 0]),
        ("ReduceSum", [2, 0, 3], [1]),  # an empty axis reduced: the identity element
        ("ReduceMax", [2, 0, 3], [-1]),  # an empty axis kept: an empty result
        ("ReduceLogSum", [0, 2], [0, 1]),
    ],
)
def test_reduce_over_run_time_axes_with_the_output_shape_unknown(
    op: str, shape: list[int], axes: list[int], keepdims: int
) -> None:
    model = _reduce_at_run_time_axes(op, shape, len(axes), keepdims)
    feeds = {
        "x": np.random.default_rng(5).standard_normal(shape).astype(np.float32),
        "axes": np.array(axes, np.int64),
    }
    expected, actual = onnxruntime_on(model, feeds), exported(model, feeds)
    assert actual["y"].shape == expected["y"].shape
    check_against(expected, actual)


def test_reduce_over_repeated_run_time_axes_fails_rather_than_giving_a_wrong_rank() -> None:
    """onnxruntime reduces [1, 1, 5] over axes [2, 2] to rank 2; a MIL tensor's rank is fixed
    when the package is written (rank 3 - 2 axes), so the package's reshape must fail."""
    model = _reduce_at_run_time_axes("ReduceSum", [1, 1, 5], 2, 0)
    feeds = {"x": np.ones((1, 1, 5), np.float32), "axes": np.array([2, 2], np.int64)}
    assert onnxruntime_on(model, feeds)["y"].shape == (1, 1)
    with pytest.raises(Exception, match="(?i)reshape"):
        exported(model, feeds)


@pytest.mark.parametrize(
    ("shape", "attributes", "length", "axis"),
    [
        ([2, 8, 3, 1], {}, None, 1),
        ([2, 7, 3, 2], {"inverse": 1}, None, 1),
        ([2, 4, 9, 1], {"onesided": 1}, None, 2),
        ([2, 5, 3, 2], {"inverse": 1, "onesided": 1}, None, 1),  # irfft: 8 real values out
        ([2, 6, 3, 2], {}, 9, -3),  # zeros after the signal
        ([2, 6, 3, 1], {"onesided": 1}, 4, 1),  # the signal cut
    ],
)
def test_dft_matches_onnxruntime(
    shape: list[int], attributes: dict[str, int], length: int | None, axis: int
) -> None:
    """Against onnxruntime's float32 FFT, to float32 sums' accuracy (the tables are exact to
    float32; onnxruntime and the node tests' float32 FFT differ from each other by ~1e-6)."""
    constants = [helper.make_tensor("axis", TensorProto.INT64, [], [axis])]
    if length is not None:
        constants.append(helper.make_tensor("length", TensorProto.INT64, [], [length]))
    node = helper.make_node("DFT", ["x", "length" if length else "", "axis"], ["y"], **attributes)
    graph = helper.make_graph(
        [node],
        "dft",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=constants,
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))
    feeds = {"x": np.random.default_rng(6).standard_normal(shape).astype(np.float32)}
    expected, actual = onnxruntime_on(model, feeds), exported(model, feeds)
    assert actual["y"].shape == expected["y"].shape
    np.testing.assert_allclose(actual["y"], expected["y"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("signal", "step", "window", "frame_length", "onesided"),
    [
        ([2, 40, 1], 5, True, None, 1),
        ([1, 33, 2], 4, False, 8, 0),
        ([2, 30, 1], 3, False, 9, 1),  # frame_length at run time: 9 or 8 give 5 bins
    ],
)
def test_stft_matches_onnxruntime(
    signal: list[int], step: int, window: bool, frame_length: int | None, onesided: int
) -> None:
    rng = np.random.default_rng(7)
    length = 8 if window else int(frame_length or 0)
    frames = (signal[1] - length) // step + 1
    bins = length // 2 + 1 if onesided else length
    inputs = [("x", TensorProto.FLOAT, signal), ("step", TensorProto.INT64, [])]
    names = ["x", "step", "", ""]
    feeds = {
        "x": rng.standard_normal(signal).astype(np.float32),
        "step": np.array(step, np.int64),
    }
    if window:
        names[2] = "window"
        inputs.append(("window", TensorProto.FLOAT, [length]))
        feeds["window"] = np.hanning(length).astype(np.float32)
    else:
        names[3] = "length"
        inputs.append(("length", TensorProto.INT64, []))
        feeds["length"] = np.array(length, np.int64)
    graph = helper.make_graph(
        [helper.make_node("STFT", names, ["y"], onesided=onesided)],
        "stft",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [signal[0], frames, bins, 2])],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    expected, actual = onnxruntime_on(model, feeds), exported(model, feeds)
    np.testing.assert_allclose(actual["y"], expected["y"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("mode", "weights", "shape", "grams", "skips"),
    [
        ("TF", None, [2, 9], (1, 2), 2),
        ("IDF", [0.5, 2.0, 1.5, 3.0, 0.25, 1.0, 4.0], [2, 9], (1, 2), 1),
        ("TFIDF", [0.5, 2.0, 1.5, 3.0, 0.25, 1.0, 4.0], [11], (2, 3), 3),
    ],
)
def test_tfidf_vectorizer_matches_onnxruntime(
    mode: str, weights: list[float] | None, shape: list[int], grams: tuple[int, int], skips: int
) -> None:
    attributes: dict[str, Any] = {
        "mode": mode,
        "min_gram_length": grams[0],
        "max_gram_length": grams[1],
        "max_skip_count": skips,
        "ngram_counts": [0, 3, 7],  # where each length starts in the pool
        "ngram_indexes": [6, 0, 1, 2, 3, 4, 5],
        # 3 unigrams, 2 bigrams, 2 trigrams
        "pool_int64s": [2, 3, 5, 2, 3, 5, 4, 2, 3, 5, 4, 4, 4],
    }
    if weights is not None:
        attributes["weights"] = weights
    model = one_node(
        "TfIdfVectorizer", [("x", TensorProto.INT64, shape)], ["y"], {"": 9}, **attributes
    )
    tokens = np.random.default_rng(9).integers(2, 6, size=shape).astype(np.int64)
    check_against(onnxruntime_on(model, {"x": tokens}), exported(model, {"x": tokens}))
