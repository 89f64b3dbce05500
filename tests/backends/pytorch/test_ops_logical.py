"""Logical, comparison and Where converters (``ops/logical.py``): node tests and hand cases."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

torch = pytest.importorskip("torch")

from torch_backend_cases import (  # noqa: E402
    assert_reshape_keeps_batch_dynamic,
    assert_same,
    run_single_node,
)

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402

OPS = [
    "And", "Or", "Xor", "Not", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",
    "Where",
]  # fmt: skip

#: Node tests of the ops above known not to pass, each with its reason.
KNOWN_FAILURES = {
    "test_equal_string": "string tensors have no torch equivalent",
    "test_equal_string_broadcast": "string tensors have no torch equivalent",
}


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS, KNOWN_FAILURES)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


# -- hand-computed cases ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64", "int8", "float16"])
def test_comparisons_on_every_numeric_type(dtype: str) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    a = np.array([info.max, 1, 0, 2], dtype=dtype)
    b = np.array([1, info.max, 0, 2], dtype=dtype)
    assert_same(run_single_node("Greater", [a, b]), a > b)
    assert_same(run_single_node("GreaterOrEqual", [a, b]), a >= b)
    assert_same(run_single_node("Less", [a, b]), a < b)
    assert_same(run_single_node("LessOrEqual", [a, b]), a <= b)
    assert_same(run_single_node("Equal", [a, b]), a == b)


def test_comparison_broadcasts() -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.array([1, 4, 2], dtype=np.int64)
    assert_same(run_single_node("Less", [a, b]), a < b)
    assert_same(run_single_node("Equal", [a, np.array(4, np.int64)]), a == 4)


def test_logical_ops_broadcast() -> None:
    a = np.array([[True], [False]])
    b = np.array([True, False, True])
    assert_same(run_single_node("And", [a, b]), a & b)
    assert_same(run_single_node("Or", [a, b]), a | b)
    assert_same(run_single_node("Xor", [a, b]), a ^ b)
    assert_same(run_single_node("Not", [b]), ~b)


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64", "int8", "bool", "float64"])
def test_where_keeps_the_type(dtype: str) -> None:
    condition = np.array([[True, False, True], [False, False, True]])
    x = np.array([1, 0, 1], dtype=dtype)
    y = np.array([[0], [1]], dtype=dtype)
    if np.dtype(dtype).kind == "u":
        x[0] = np.iinfo(dtype).max
    assert_same(run_single_node("Where", [condition, x, y]), np.where(condition, x, y))


def test_where_on_a_shape_stays_dynamic() -> None:
    """``Where(Equal(shape, c), -1, shape)`` feeding Reshape keeps the batch symbolic."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Equal", ["s", "ones"], ["e"]),
        helper.make_node("Where", ["e", "minus", "s"], ["t"]),
        helper.make_node("Reshape", ["x", "t"], ["y"]),
    ]
    constants = {"ones": np.array([1, 3], np.int64), "minus": np.array([-1, -1], np.int64)}
    assert_reshape_keeps_batch_dynamic(nodes, constants, batches=(3, 7))
