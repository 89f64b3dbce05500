"""Comparison maths for validation: per-output error figures and pass/fail.

An element fails only where ``|a - b| > atol + rtol * |b|`` (``b`` the reference), as numpy's
``isclose``; defaults rtol 1e-4, atol 1e-5 (Polygraphy's and tf2onnx's defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5


@dataclass
class OutputComparison:
    """How one output of the converted model compares with the reference's."""

    name: str
    shape: list[int]
    max_abs: float
    max_rel: float
    mismatched: int
    total: int
    ok: bool
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["note"]:
            del data["note"]
        return data


def _as_float(array: np.ndarray) -> np.ndarray:
    # Narrow float types (float8 and the like) may hold NaN encodings numpy warns about: quiet.
    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(np.float64, copy=False)


def compare_arrays(
    name: str, actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float
) -> OutputComparison:
    """Compares ``actual`` (converted) with ``expected`` (reference)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    shape = [int(d) for d in expected.shape]
    if actual.shape != expected.shape:
        return OutputComparison(
            name,
            shape,
            float("inf"),
            float("inf"),
            int(expected.size),
            int(expected.size),
            False,
            f"shape {list(actual.shape)} differs from the reference's {shape}",
        )
    if expected.dtype.kind in "OSU" or actual.dtype.kind in "OSU":
        equal = actual == expected
        mismatched = int(np.size(equal) - np.count_nonzero(equal))
        return OutputComparison(
            name,
            shape,
            0.0 if not mismatched else float("inf"),
            0.0 if not mismatched else float("inf"),
            mismatched,
            int(expected.size),
            mismatched == 0,
        )
    a = _as_float(actual)
    b = _as_float(expected)
    if a.size == 0:
        return OutputComparison(name, shape, 0.0, 0.0, 0, 0, True)
    # NaN matches NaN and an infinity matches the same infinity, as in onnx's backend tests.
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    exact = both_nan | same_inf
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(exact, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        # An infinity that is not matched exactly fails: its diff is inf and it gets no rtol slack.
        scale = np.where(exact | ~np.isfinite(b), 0.0, np.abs(b))
        rel = np.where(diff == 0, 0.0, diff / np.maximum(scale, np.finfo(np.float64).tiny))
        failing = diff > atol + rtol * scale
    mismatched = int(np.count_nonzero(failing))
    return OutputComparison(
        name, shape, float(diff.max()), float(rel.max()), mismatched, int(b.size), mismatched == 0
    )


def match_outputs(
    actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]
) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
    """Pairs outputs by name where every reference name is present, else by position.

    Converters may rename outputs (PyTorch names them by position), so position is the fallback;
    an output missing from ``actual`` pairs with ``None``.
    """
    if set(expected) <= set(actual):
        return [(name, actual[name], value) for name, value in expected.items()]
    actual_values: Sequence[np.ndarray] = list(actual.values())
    pairs: list[tuple[str, np.ndarray | None, np.ndarray]] = []
    for index, (name, value) in enumerate(expected.items()):
        pairs.append((name, actual_values[index] if index < len(actual_values) else None, value))
    return pairs


def compare_outputs(
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> list[OutputComparison]:
    """One comparison per reference output."""
    results = []
    for name, got, want in match_outputs(actual, expected):
        want = np.asarray(want)
        if got is None:
            shape = [int(d) for d in want.shape]
            results.append(
                OutputComparison(
                    name,
                    shape,
                    float("inf"),
                    float("inf"),
                    int(want.size),
                    int(want.size),
                    False,
                    "missing from the converted model's outputs",
                )
            )
        else:
            results.append(compare_arrays(name, np.asarray(got), want, rtol, atol))
    return results
