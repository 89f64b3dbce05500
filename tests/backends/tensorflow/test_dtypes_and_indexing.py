"""Element types TensorFlow cannot compute on, and the trickiest indexing semantics.

Oracles: onnx's reference evaluator (ml_dtypes' rounding) for casts to and from the types TF
holds without a Cast kernel, and for signed BitShift (onnxruntime shifts unsigned types only);
onnxruntime for the scatters with duplicate indices, Pad's modes with pads fed at run time, and
Unique. Inputs are seeded and include the edge values (ties, overflow, NaN, infinities).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402

F = TensorProto.FLOAT


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[Any]]],
    outputs: list[tuple[str, int, list[Any] | None]],
    opset: int,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(*spec) for spec in inputs],
        [helper.make_tensor_value_info(*spec) for spec in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensorflow(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    got = run_built(to_tensorflow(ir.from_proto(proto)), feeds)
    return [got[output.name] for output in proto.graph.output]


def _onnxruntime(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


def _edge_floats(rng: np.random.Generator, top: float) -> np.ndarray:
    """Random values over the target's range and past it, plus its exact ties and specials."""
    spread = rng.uniform(-1.5 * top, 1.5 * top, 200)
    small = rng.uniform(-2.0, 2.0, 200)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, top, -top, 1.5 * top, 1e-30]
    return np.concatenate([spread, small, specials]).astype(np.float32)


@pytest.mark.parametrize(
    ("to", "saturate"),
    [
        (TensorProto.FLOAT8E4M3FNUZ, 1),
        (TensorProto.FLOAT8E4M3FNUZ, 0),
        (TensorProto.FLOAT8E5M2FNUZ, 1),
        (TensorProto.FLOAT8E5M2FNUZ, 0),
        (TensorProto.FLOAT8E4M3FN, 1),
        (TensorProto.FLOAT8E5M2, 1),
        (TensorProto.FLOAT4E2M1, 1),
    ],
)
def test_cast_to_small_floats_rounds_and_saturates_as_the_reference(to: int, saturate: int) -> None:
    target = helper.tensor_dtype_to_np_dtype(to)
    top = float(ml_dtypes.finfo(target).max)
    x = _edge_floats(np.random.default_rng(to * 2 + saturate), top)
    # Every midpoint between consecutive values: ties go to the even pattern.
    patterns = np.arange(16 if to == TensorProto.FLOAT4E2M1 else 256, dtype=np.uint8)
    values = np.unique(patterns.view(target).astype(np.float32))
    values = values[np.isfinite(values)]
    x = np.concatenate([x, (values[1:] + values[:-1]) / 2]).astype(np.float32)
    proto = _model(
        [helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)],
        [("x", F, [len(x)])],
        [("y", to, [len(x)])],
        opset=23,
    )
    (want,) = ReferenceEvaluator(proto).run(None, {"x": x})
    (got,) = _tensorflow(proto, {"x": x})
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))


@pytest.mark.parametrize("to", [TensorProto.INT4, TensorProto.UINT4, TensorProto.INT2])
def test_small_integers_wrap_and_read_back_exactly(to: int) -> None:
    """float -> int4/uint4/int2 truncates and keeps the low bits; the result cast back to
    float32 (decoded through Fingerprint) is the reference's value."""
    x = np.random.default_rng(to).uniform(-40, 40, 300).astype(np.float32)
    proto = _model(
        [
            helper.make_node("Cast", ["x"], ["small"], to=to),
            helper.make_node("Cast", ["small"], ["back"], to=F),
        ],
        [("x", F, [len(x)])],
        [("small", to, [len(x)]), ("back", F, [len(x)])],
        opset=23,
    )
    want = ReferenceEvaluator(proto).run(None, {"x": x})
    got = _tensorflow(proto, {"x": x})
    assert got[0].dtype == want[0].dtype
    np.testing.assert_array_equal(got[0].astype(np.int64), want[0].astype(np.int64))
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_signed_bit_shift_overflow_and_out_of_range_shifts(direction: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, 64).astype(np.int8)
    shift = rng.integers(-3, 11, 64).astype(np.int8)
    proto = _model(
        [helper.make_node("BitShift", ["x", "s"], ["y"], direction=direction)],
        [("x", TensorProto.INT8, [64]), ("s", TensorProto.INT8, [64])],
        [("y", TensorProto.INT8, [64])],
        opset=26,
    )
    (want,) = ReferenceEvaluator(proto).run(None, {"x": x, "s": shift})
    (got,) = _tensorflow(proto, {"x": x, "s": shift})
    np.testing.assert_array_equal(got, want)


def test_mod_on_types_without_a_tf_kernel() -> None:
    """int8 floor-mod and float16 fmod run in a wider type and come back exact."""
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, 50).astype(np.int8)
    b = rng.choice([-7, -3, 3, 5, 127, -128], 50).astype(np.int8)
    h = rng.uniform(-50, 50, 50).astype(np.float16)
    g = rng.choice([-3.5, 2.25, 7.0], 50).astype(np.float16)
    proto = _model(
        [
            helper.make_node("Mod", ["a", "b"], ["m"]),
            helper.make_node("Mod", ["h", "g"], ["f"], fmod=1),
        ],
        [
            ("a", TensorProto.INT8, [50]),
            ("b", TensorProto.INT8, [50]),
            ("h", TensorProto.FLOAT16, [50]),
            ("g", TensorProto.FLOAT16, [50]),
        ],
        [("m", TensorProto.INT8, [50]), ("f", TensorProto.FLOAT16, [50])],
        opset=13,
    )
    feeds = {"a": a, "b": b, "h": h, "g": g}
    want = _onnxruntime(proto, feeds)
    got = _tensorflow(proto, feeds)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatters_reduce_duplicate_indices(reduction: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.uniform(0.5, 2.0, (4, 5)).astype(np.float32)
    updates = rng.uniform(0.5, 2.0, (3, 5)).astype(np.float32)
    indices = np.array([[1, 0, 3, 3, 1], [1, 2, 3, 0, 1], [2, 0, 3, 3, 1]], np.int64)
    nd_indices = np.array([[1], [3], [1]], np.int64)
    proto = _model(
        [
            helper.make_node(
                "ScatterElements", ["d", "i", "u"], ["e"], axis=0, reduction=reduction
            ),
            helper.make_node("ScatterND", ["d", "n", "u"], ["s"], reduction=reduction),
        ],
        [
            ("d", F, [4, 5]),
            ("i", TensorProto.INT64, [3, 5]),
            ("n", TensorProto.INT64, [3, 1]),
            ("u", F, [3, 5]),
        ],
        [("e", F, [4, 5]), ("s", F, [4, 5])],
        opset=18,
    )
    feeds = {"d": data, "i": indices, "n": nd_indices, "u": updates}
    want = _onnxruntime(proto, feeds)
    got = _tensorflow(proto, feeds)
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_with_run_time_pads_including_crops(mode: str) -> None:
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    pads = np.array([1, -1, 2, 2, 1, -2], np.int64)  # begin of the 3 axes, then end
    proto = _model(
        [helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)],
        [("x", F, [3, 4, 5]), ("p", TensorProto.INT64, [6])],
        [("y", F, None)],
        opset=19,
    )
    feeds = {"x": x, "p": pads}
    (want,) = _onnxruntime(proto, feeds)
    (got,) = _tensorflow(proto, feeds)
    np.testing.assert_array_equal(got, want)


def test_unique_sorted_along_an_axis() -> None:
    x = np.random.default_rng(5).integers(0, 3, (6, 3)).astype(np.float32)
    x[4] = x[1]
    proto = _model(
        [helper.make_node("Unique", ["x"], ["y", "first", "inverse", "counts"], axis=0)],
        [("x", F, [6, 3])],
        [
            ("y", F, None),
            ("first", TensorProto.INT64, None),
            ("inverse", TensorProto.INT64, None),
            ("counts", TensorProto.INT64, None),
        ],
        opset=11,
    )
    want = _onnxruntime(proto, {"x": x})
    got = _tensorflow(proto, {"x": x})
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_unsigned_and_small_integer_fallbacks_wrap_as_the_narrow_type() -> None:
    """Pow on uint8 and Einsum on int8 run in int64 (TF has no kernel for them); their results
    overflow the narrow type and must come back with its wrapped low bits."""
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, 40).astype(np.uint8)
    exponent = rng.integers(0, 9, 40).astype(np.uint8)
    a = rng.integers(-128, 128, (3, 8)).astype(np.int8)
    b = rng.integers(-128, 128, (8, 4)).astype(np.int8)
    u = rng.integers(0, 2**64, 10, dtype=np.uint64)
    u[0] = 0
    proto = _model(
        [
            helper.make_node("Pow", ["base", "exponent"], ["power"]),
            helper.make_node("Einsum", ["a", "b"], ["product"], equation="ij,jk->ik"),
            helper.make_node("Sign", ["u"], ["sign"]),
            helper.make_node("Abs", ["u"], ["magnitude"]),
        ],
        [
            ("base", TensorProto.UINT8, [40]),
            ("exponent", TensorProto.UINT8, [40]),
            ("a", TensorProto.INT8, [3, 8]),
            ("b", TensorProto.INT8, [8, 4]),
            ("u", TensorProto.UINT64, [10]),
        ],
        [
            ("power", TensorProto.UINT8, [40]),
            ("product", TensorProto.INT8, [3, 4]),
            ("sign", TensorProto.UINT64, [10]),
            ("magnitude", TensorProto.UINT64, [10]),
        ],
        opset=15,
    )
    feeds = {"base": base, "exponent": exponent, "a": a, "b": b, "u": u}
    want = ReferenceEvaluator(proto).run(None, feeds)
    got = _tensorflow(proto, feeds)
    assert int(np.abs(a.astype(np.int64) @ b.astype(np.int64)).max()) > 127  # it does overflow
    for actual, expected in zip(got, want, strict=True):
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


def test_opset_11_hardmax_reads_its_input_as_a_matrix() -> None:
    """Hardmax before opset 13 takes the maximum over every dim from ``axis`` on, not one."""
    x = np.random.default_rng(7).standard_normal((2, 3, 4)).astype(np.float32)
    proto = _model(
        [helper.make_node("Hardmax", ["x"], ["y"], axis=1)],
        [("x", F, [2, 3, 4])],
        [("y", F, [2, 3, 4])],
        opset=11,
    )
    (want,) = _onnxruntime(proto, {"x": x})
    (got,) = _tensorflow(proto, {"x": x})
    np.testing.assert_array_equal(got, want)


def test_opset_9_slice_and_pad_take_their_attributes() -> None:
    x = np.random.default_rng(8).standard_normal((3, 6, 5)).astype(np.float32)
    proto = _model(
        [
            helper.make_node("Slice", ["x"], ["s"], starts=[1, -4], ends=[100, -1], axes=[1, 2]),
            helper.make_node("Pad", ["s"], ["p"], pads=[0, 2, 1, 1, 0, 2], mode="edge"),
            helper.make_node("Pad", ["s"], ["c"], pads=[1, 0, 0, 0, -1, 1], value=2.5),
        ],
        [("x", F, [3, 6, 5])],
        [("s", F, None), ("p", F, None), ("c", F, None)],
        opset=9,
    )
    want = _onnxruntime(proto, {"x": x})
    got = _tensorflow(proto, {"x": x})
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_strings_and_integers_cast_both_ways() -> None:
    """Integers past 2**53 survive string -> int64 (parsed as integers, not through float64)."""
    text = np.array(["9007199254740993", "-42", "7"], dtype=object)
    numbers = np.array([9007199254740993, -5, 0], np.int64)
    proto = _model(
        [
            helper.make_node("Cast", ["text"], ["parsed"], to=TensorProto.INT64),
            helper.make_node("Cast", ["numbers"], ["written"], to=TensorProto.STRING),
        ],
        [("text", TensorProto.STRING, [3]), ("numbers", TensorProto.INT64, [3])],
        [("parsed", TensorProto.INT64, [3]), ("written", TensorProto.STRING, [3])],
        opset=13,
    )
    feeds = {"text": text, "numbers": numbers}
    want = _onnxruntime(proto, feeds)
    got = _tensorflow(proto, feeds)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1].tolist() == want[1].tolist()


@pytest.mark.parametrize(
    "to", [TensorProto.INT4, TensorProto.INT8, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2]
)
def test_float8_sources_cast_as_the_reference(to: int) -> None:
    """float8 values (few TF kernels) to wrapping integers and to other 8-bit floats."""
    values = np.array([448, -448, 1.5, 0.3, -7, 3, 240, 0.0], np.float32)
    x = values.astype(ml_dtypes.float8_e4m3fn)
    proto = _model(
        [helper.make_node("Cast", ["x"], ["y"], to=to)],
        [("x", TensorProto.FLOAT8E4M3FN, [8])],
        [("y", to, [8])],
        opset=21,
    )
    (want,) = ReferenceEvaluator(proto).run(None, {"x": x})
    (got,) = _tensorflow(proto, {"x": x})
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
