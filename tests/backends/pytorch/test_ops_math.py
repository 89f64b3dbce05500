"""Element-wise math converters (``ops/math.py``): onnx's node tests and hand-computed cases."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper

torch = pytest.importorskip("torch")

from torch_backend_cases import (  # noqa: E402
    assert_reshape_keeps_batch_dynamic,
    assert_same,
    run_single_node,
)

from unframe.backends.pytorch import export_program  # noqa: E402

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402

OPS = [
    "Abs", "Neg", "Reciprocal", "Exp", "Log", "Sqrt", "Floor", "Ceil", "Round", "Sign", "Erf",
    "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
    "IsNaN", "IsInf", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Clip", "BitShift",
    "BitwiseNot", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitCast", "Shrink", "Det",
    "Binarizer",
]  # fmt: skip

#: Node tests of the ops above known not to pass, each with its reason.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS, KNOWN_FAILURES)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


# -- hand-computed cases ---------------------------------------------------------------------------
def test_mod_integer_sign_rules() -> None:
    a = np.array([-7, 7, -7, 7, 6, -6], dtype=np.int32)
    b = np.array([3, -3, -3, 3, -3, 3], dtype=np.int32)
    # fmod=0 takes the divisor's sign (Python's %), fmod=1 the dividend's (C's fmod).
    assert_same(run_single_node("Mod", [a, b]), np.array([2, -2, -1, 1, 0, 0], np.int32))
    assert_same(run_single_node("Mod", [a, b], fmod=1), np.array([-1, 1, -1, 1, 0, 0], np.int32))


def test_mod_int8_broadcast_and_unsigned() -> None:
    a = np.array([[-128], [127]], dtype=np.int8)
    b = np.array([5, -5], dtype=np.int8)
    assert_same(run_single_node("Mod", [a, b]), np.array([[2, -3], [2, -3]], np.int8))
    big = np.array([4_000_000_000, 7], dtype=np.uint32)
    assert_same(
        run_single_node("Mod", [big, np.array([7, 3], np.uint32)]), np.array([3, 1], np.uint32)
    )


def test_mod_float_special_values() -> None:
    inf = np.inf
    a = np.array([-0.0, 0.0, 1.0, -1.0, inf, 5.5, -5.5], dtype=np.float32)
    b = np.array([5.0, -5.0, inf, inf, 2.0, -2.0, 2.0], dtype=np.float32)
    got = run_single_node("Mod", [a, b])
    want = np.array([0.0, -0.0, 1.0, inf, np.nan, -0.5, 0.5], dtype=np.float32)
    assert_same(got, want)
    # The zero results carry the divisor's sign.
    assert list(np.signbit(got[:2])) == [False, True]
    fmod = run_single_node("Mod", [a, b], fmod=1)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(fmod, np.fmod(a, b))


def test_pow_keeps_the_base_type() -> None:
    base = np.array([1, 2, 3], dtype=np.int32)
    assert_same(
        run_single_node("Pow", [base, np.array([4.0, 0.5, 2.0], np.float32)]),
        np.array([1, 1, 9], np.int32),
    )
    assert_same(
        run_single_node("Pow", [base, np.array([3], np.int64)]), np.array([1, 8, 27], np.int32)
    )
    half = np.array([2.0, 3.0], dtype=np.float16)
    assert_same(
        run_single_node("Pow", [half, np.array([2.0, -1.0], np.float32)]),
        np.array([4.0, 1 / 3], np.float16),
    )


def test_bit_shift_signed_and_out_of_range() -> None:
    x = np.array([-8, -8, 8, 64, -1, 5], dtype=np.int8)
    shift = np.array([1, 9, -1, 1, 7, 8], dtype=np.int8)
    right = run_single_node("BitShift", [x, shift], opset=28, direction="RIGHT")
    assert_same(right, np.array([-4, -1, 0, 32, -1, 0], np.int8))
    left = run_single_node("BitShift", [x, shift], opset=28, direction="LEFT")
    assert_same(left, np.array([-16, 0, 0, -128, -128, 0], np.int8))


def test_bit_shift_uint64_is_logical() -> None:
    x = np.array([2**63 + 4, 2**64 - 1, 1], dtype=np.uint64)
    shift = np.array([1, 63, 63], dtype=np.uint64)
    want = np.array([2**62 + 2, 1, 0], dtype=np.uint64)
    assert_same(run_single_node("BitShift", [x, shift], direction="RIGHT"), want)
    want_left = np.array([8, 2**63, 2**63], dtype=np.uint64)
    assert_same(run_single_node("BitShift", [x, shift], direction="LEFT"), want_left)


def test_bitwise_not_wide_unsigned() -> None:
    assert_same(
        run_single_node("BitwiseNot", [np.array([0, 5], np.uint32)]),
        np.array([2**32 - 1, 2**32 - 6], np.uint32),
    )
    assert_same(
        run_single_node("BitwiseNot", [np.array([0, 2**63], np.uint64)]),
        np.array([2**64 - 1, 2**63 - 1], np.uint64),
    )


def test_max_min_keep_unsigned_order() -> None:
    a = np.array([2**64 - 1, 1, 2**63], dtype=np.uint64)
    b = np.array([2, 2**63, 2**63 - 1], dtype=np.uint64)
    assert_same(run_single_node("Max", [a, b]), np.maximum(a, b))
    assert_same(run_single_node("Min", [a, b]), np.minimum(a, b))
    c = np.array([4_000_000_000, 3], dtype=np.uint32)
    assert_same(
        run_single_node("Max", [c, np.array([5], np.uint32)]), np.array([4_000_000_000, 5], "u4")
    )


def test_variadic_broadcasting() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    c = np.array([[1.0], [2.0]], dtype=np.float32)
    assert_same(run_single_node("Sum", [a, b, c]), a + b + c)
    np.testing.assert_allclose(run_single_node("Mean", [a, b, c]), (a + b + c) / 3, rtol=1e-6)
    assert_same(run_single_node("Max", [a, b, c]), np.maximum(np.maximum(a, b), c))
    assert_same(run_single_node("Min", [a]), a)


def test_clip_bounds() -> None:
    x = np.array([-5, 0, 5, 300], dtype=np.int64)
    assert_same(run_single_node("Clip", [x, None, np.array(4, np.int64)]), np.array([-5, 0, 4, 4]))
    assert_same(run_single_node("Clip", [x, np.array(1, np.int64)]), np.array([1, 1, 5, 300]))
    # min > max: everything becomes max.
    bounds = [np.array(3, np.int64), np.array(2, np.int64)]
    assert_same(run_single_node("Clip", [x, *bounds]), np.array([2, 2, 2, 2]))
    u = np.array([1, 4_000_000_000], dtype=np.uint32)
    clipped = run_single_node(
        "Clip", [u, np.array(2, np.uint32), np.array(3_000_000_000, np.uint32)]
    )
    assert_same(clipped, np.array([2, 3_000_000_000], np.uint32))
    f = np.array([-2.0, 0.5, 9.0], dtype=np.float32)
    assert_same(
        run_single_node("Clip", [f], opset=6, min=-1.0, max=1.0), np.array([-1, 0.5, 1], "f4")
    )


def test_is_inf_directions() -> None:
    x = np.array([-np.inf, np.inf, np.nan, 1.0], dtype=np.float32)
    assert_same(
        run_single_node("IsInf", [x], detect_negative=0), np.array([False, True, False, False])
    )
    assert_same(
        run_single_node("IsInf", [x], detect_positive=0), np.array([True, False, False, False])
    )
    assert_same(run_single_node("IsNaN", [x]), np.array([False, False, True, False]))


def test_round_sign_abs() -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)
    assert_same(run_single_node("Round", [x]), np.array([-2, -2, -0, 0, 2, 2], np.float32))
    u = np.array([0, 7], dtype=np.uint32)
    assert_same(run_single_node("Sign", [u]), np.array([0, 1], np.uint32))
    assert_same(run_single_node("Abs", [u]), u)
    assert_same(run_single_node("Abs", [np.array([-3, 3], np.int16)]), np.array([3, 3], np.int16))


def test_shrink_integers() -> None:
    x = np.array([-3, -1, 0, 1, 3], dtype=np.int32)
    got = run_single_node("Shrink", [x], lambd=1.5, bias=1.0)
    assert_same(got, np.array([-2, 0, 0, 0, 2], np.int32))


def test_det_batched_half() -> None:
    x = np.array([[[2.0, 1.0], [1.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]], dtype=np.float16)
    assert_same(run_single_node("Det", [x]), np.array([5.0, -2.0], np.float16))


def test_bit_cast() -> None:
    x = np.array([1.0, -2.0], dtype=np.float32)
    got = run_single_node("BitCast", [x], opset=26, to=onnx.TensorProto.INT32)
    assert_same(got, x.view(np.int32))


def test_binarizer() -> None:
    x = np.array([-1.0, 0.5, 2.0, np.nan], dtype=np.float32)
    got = run_single_node("Binarizer", [x], domain="ai.onnx.ml", threshold=0.5)
    assert_same(got, np.array([0, 0, 1, 0], np.float32))
    ints = np.array([-3, 0, 4], dtype=np.int64)
    assert_same(run_single_node("Binarizer", [ints], domain="ai.onnx.ml"), np.array([0, 0, 1]))


def test_exports_with_dynamic_batch() -> None:
    """The run-time helpers trace under ``torch.export`` with a symbolic batch."""
    nodes = [
        helper.make_node("Abs", ["x"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["c"]),
        helper.make_node("Pow", ["c", "two"], ["p"]),
        helper.make_node("Mod", ["p", "three"], ["m"]),
        helper.make_node("Max", ["m", "x", "lo"], ["mx"]),
        helper.make_node("Mean", ["mx", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(np.array(0.25, np.float32), "lo"),
            numpy_helper.from_array(np.array(2.0, np.float32), "hi"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            numpy_helper.from_array(np.array(3.0, np.float32), "three"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    program = export_program(ir.from_proto(model))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32) * 3
    (got,) = program.module()(torch.from_numpy(x))
    c = np.clip(np.abs(x), 0.25, 2.0)
    want = (np.maximum(np.maximum(np.mod(c**2, 3.0), x), 0.25) + c) / 2
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-6, atol=1e-6)


def test_shape_arithmetic_stays_dynamic() -> None:
    """Neg/Max/Sum/Mod on a ``Shape`` result feed a Reshape without baking in the batch."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Neg", ["s"], ["ns"]),
        helper.make_node("Max", ["ns", "low"], ["m"]),
        helper.make_node("Neg", ["m"], ["p"]),
        helper.make_node("Sum", ["p", "zero"], ["q"]),
        helper.make_node("Mod", ["q", "big"], ["t"]),
        helper.make_node("Reshape", ["x", "t"], ["y"]),
    ]
    constants = {
        "low": np.array([-1000, -3], np.int64),
        "zero": np.array(0, np.int64),
        "big": np.array(1000, np.int64),
    }
    assert_reshape_keeps_batch_dynamic(nodes, constants, batches=(3, 6))
