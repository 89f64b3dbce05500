"""Comparison maths against hand-computed figures."""

from __future__ import annotations

import numpy as np

from unframe.shared_ir.compare import compare_arrays, compare_outputs


def test_element_fails_only_beyond_atol_plus_rtol_times_reference():
    expected = np.array([1.0, 100.0, 0.0, -2.0])
    # Deviations: 1e-5 (limit 1e-5 + 1e-4*1 = 1.1e-4: ok), 0.02 (limit 1.001e-2: fails),
    # 2e-5 (limit 1e-5: fails), 0 (ok).
    actual = np.array([1.0 + 1e-5, 100.02, 2e-5, -2.0])
    result = compare_arrays("y", actual, expected, rtol=1e-4, atol=1e-5)
    assert result.mismatched == 2
    assert result.total == 4
    assert not result.ok
    assert np.isclose(result.max_abs, 0.02)
    # Largest relative error is at the zero reference: 2e-5 / tiny -> huge; the 100 entry is 2e-4.
    assert result.max_rel > 1.0


def test_within_tolerance_passes_with_exact_figures():
    expected = np.array([[2.0, 4.0]], dtype=np.float32)
    actual = np.array([[2.0001, 4.0]], dtype=np.float32)
    result = compare_arrays("y", actual, expected, rtol=1e-3, atol=0.0)
    assert result.ok and result.mismatched == 0
    assert result.shape == [1, 2]
    assert abs(result.max_abs - 1e-4) < 1e-6
    assert abs(result.max_rel - 5e-5) < 1e-6


def test_shape_mismatch_fails_every_element():
    result = compare_arrays("y", np.zeros((2, 3)), np.zeros((3, 2)), rtol=0, atol=0)
    assert not result.ok and result.mismatched == 6 and "shape" in result.note


def test_nan_matches_nan_and_inf_matches_same_inf_only():
    expected = np.array([np.nan, np.inf, -np.inf])
    assert compare_arrays("y", expected.copy(), expected, 0, 0).ok
    flipped = np.array([np.nan, -np.inf, -np.inf])
    assert compare_arrays("y", flipped, expected, 0, 0).mismatched == 1


def test_integer_and_bool_outputs_compare_exactly():
    assert compare_arrays("i", np.array([1, 2, 3]), np.array([1, 2, 4]), 0, 0).mismatched == 1
    assert compare_arrays("b", np.array([True, False]), np.array([True, False]), 0, 0).ok


def test_outputs_pair_by_name_then_by_position():
    expected = {"a": np.ones(2), "b": np.zeros(2)}
    by_name = compare_outputs({"b": np.zeros(2), "a": np.ones(2)}, expected)
    assert [r.ok for r in by_name] == [True, True]
    renamed = compare_outputs({"out0": np.ones(2), "out1": np.ones(2)}, expected)
    assert [r.name for r in renamed] == ["a", "b"]
    assert [r.ok for r in renamed] == [True, False]
    missing = compare_outputs({"out0": np.ones(2)}, expected)
    assert not missing[1].ok and "missing" in missing[1].note
