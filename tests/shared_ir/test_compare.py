"""Comparison maths against hand-computed figures."""

from __future__ import annotations

import numpy as np

from unframe.shared_ir.compare import compare_arrays, compare_models, compare_outputs


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


# -- exactness, dtypes, scale and flags (issue 10, item 9) -----------------------------------


def test_int64_outputs_compare_exactly_where_rtol_would_have_passed_them():
    # rtol 1e-4 of 100000 is 10: the old relative check passed 100009; integers must be equal.
    expected = np.array([100000, 7], np.int64)
    result = compare_arrays("i", np.array([100009, 7], np.int64), expected, 1e-4, 1e-5)
    assert not result.ok and result.mismatched == 1 and result.total == 2
    assert result.max_abs == 9.0


def test_int64_values_beyond_float64_precision_still_differ():
    # 2**60 and 2**60 + 1 are the same float64; compared as integers they are not.
    expected = np.array([2**60], np.int64)
    result = compare_arrays("i", expected + 1, expected, 1e-4, 1e-5)
    assert not result.ok and result.mismatched == 1 and result.max_abs >= 1.0


def test_float_zeros_against_bools_fail_on_dtype():
    result = compare_arrays("y", np.zeros(3, np.bool_), np.zeros(3, np.float32), 1e-4, 1e-5)
    assert not result.ok
    assert result.mismatched == 0  # the values agree as numbers; the element type does not
    assert result.dtype == "bool" and result.reference_dtype == "float32"
    assert "dtype bool differs from the reference's float32" in result.note


def test_float64_for_float32_fails_even_with_equal_values():
    expected = np.array([1.5, -2.0], np.float32)
    result = compare_arrays("y", expected.astype(np.float64), expected, 1e-4, 1e-5)
    assert not result.ok and "dtype float64" in result.note


def test_a_framework_without_uint64_may_hold_it_as_int64_when_the_values_survive():
    expected = np.array([1, 2**40], np.uint64)
    as_int64 = np.array([1, 2**40], np.int64)
    result = compare_arrays("u", as_int64, expected, 1e-4, 1e-5, frameworks=("onnx", "caffe2"))
    assert result.ok and "caffe2 has no uint64" in result.note
    # The same pair without a framework that lacks uint64 is a dtype difference.
    assert not compare_arrays("u", as_int64, expected, 1e-4, 1e-5, frameworks=("onnx",)).ok
    # -1 has the bits of 2**64 - 1 but not its value.
    wrapped = compare_arrays(
        "u",
        np.array([-1], np.int64),
        np.array([2**64 - 1], np.uint64),
        1e-4,
        1e-5,
        frameworks=("caffe2",),
    )
    assert not wrapped.ok and wrapped.mismatched == 1


def test_bfloat16_held_as_float32_compares_after_the_cast():
    import ml_dtypes

    expected = np.array([1.0, 0.5, -3.0], ml_dtypes.bfloat16)
    # 1.001 rounds to 1.0 in bfloat16 (its spacing at 1 is 2**-7): equal after the cast.
    actual = np.array([1.001, 0.5, -3.0], np.float32)
    result = compare_arrays("b", actual, expected, 1e-4, 1e-5, frameworks=("caffe2",))
    assert result.ok and result.max_abs == 0.0
    off = compare_arrays(
        "b", np.array([1.1, 0.5, -3.0], np.float32), expected, 1e-4, 1e-5, frameworks=("caffe2",)
    )
    assert not off.ok and off.mismatched == 1


def test_a_difference_small_in_absolute_terms_fails_against_the_output_scale():
    expected = np.array([0.01, 0.02, 0.03, 0.04])
    actual = expected + np.array([1e-5, 0.0, 0.0, 0.0])
    # atol/rtol alone: 1e-5 <= 1e-5 + 1e-4 * 0.01 = 1.1e-5, so it passes.
    plain = compare_arrays("y", actual, expected, 1e-4, 1e-5)
    assert plain.ok
    # std of [0.01, 0.02, 0.03, 0.04] = sqrt(1.25e-4) = 0.01118; atol capped at 1e-4 * 0.01118
    # = 1.118e-6, and 1e-5 > 1.118e-6 + 1e-6 fails.
    scaled = compare_arrays("y", actual, expected, 1e-4, 1e-5, against_scale=True)
    assert not scaled.ok and scaled.mismatched == 1
    assert abs(scaled.rel_to_scale - 1e-5 / np.sqrt(1.25e-4)) < 1e-9
    assert "scale" in scaled.note


def test_the_scale_cap_leaves_outputs_of_unit_scale_to_atol_and_rtol():
    expected = np.array([1.0, 2.0, 3.0, 4.0])  # std 1.118: rtol * std = 1.1e-4 > atol
    actual = expected + np.array([1e-5, 0.0, 0.0, 0.0])
    result = compare_arrays("y", actual, expected, 1e-4, 1e-5, against_scale=True)
    assert result.ok and abs(result.rel_to_scale - 1e-5 / np.sqrt(1.25)) < 1e-9


def test_constant_saturated_and_near_constant_outputs_are_flagged():
    constant = np.full(5, 3.0, np.float32)
    assert compare_arrays("c", constant, constant, 1e-4, 1e-5).flags == ["constant"]
    assert compare_arrays("c", constant, constant, 1e-4, 1e-5).rel_to_scale is None
    argmax = np.zeros(4, np.int64)
    assert compare_arrays("a", argmax, argmax, 1e-4, 1e-5).flags == ["constant"]
    softmax = np.array([[1e-12, 1.0 - 2e-12, 1e-12], [1.0, 0.0, 0.0]], np.float64)
    assert compare_arrays("s", softmax, softmax, 1e-4, 1e-5).flags == ["saturated"]
    # std of 3 + [0, 1e-6, 2e-6] is 8.2e-7, inside atol + rtol * 3 = 3.1e-4.
    near = 3.0 + np.array([0.0, 1e-6, 2e-6])
    assert compare_arrays("n", near, near, 1e-4, 1e-5).flags == ["near-constant"]
    spread = np.array([0.1, 0.5, 0.2, 0.9])
    assert compare_arrays("r", spread, spread, 1e-4, 1e-5).flags == []


def test_nothing_compared_is_a_failure():
    none = compare_models({}, {})
    assert not none.ok and none.outputs == []
    assert "no outputs" in none.problems[0]
    missing = compare_models({}, {"y": np.ones(2)})
    assert not missing.ok and "converted model has no outputs" in missing.problems[0]
    # Something compared, all equal: passes with no problems.
    same = compare_models({"y": np.arange(3.0)}, {"y": np.arange(3.0)})
    assert same.ok and same.problems == [] and same.warnings == []


def test_flagged_outputs_pass_with_a_warning_that_suggests_real_inputs():
    constant = {"y": np.zeros((2, 3), np.float32)}
    report = compare_models(constant, constant)
    assert report.ok
    (warning,) = report.warnings
    assert warning.startswith("constant output(s) y") and "--inputs" in warning


def test_json_keeps_the_contract_keys_and_adds_dtype_scale_and_flags():
    data = compare_arrays("y", np.arange(4.0), np.arange(4.0), 1e-4, 1e-5).as_json()
    assert {"name", "shape", "max_abs", "max_rel", "mismatched", "total", "ok"} <= set(data)
    assert data["dtype"] == data["reference_dtype"] == "float64"
    assert data["rel_to_scale"] == 0.0 and data["flags"] == []
