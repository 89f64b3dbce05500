"""Comparison maths for validation: per-output error figures, pass/fail and honest warnings.

A float element fails where ``|a - b| > atol + rtol * |b|`` (``b`` the reference), as numpy's
``isclose``; defaults rtol 1e-4, atol 1e-5 (Polygraphy's and tf2onnx's defaults). Validation
(``compare_outputs``) also measures each output against its own scale: atol is capped at
``rtol * std(reference)``, so on an output whose values are about 1e-2 a difference of 1e-5 (a
tenth of a percent of the output's spread) fails instead of hiding under the absolute tolerance.
Integers, bools and strings compare exactly; element types must agree, except where a framework
lacks the reference's type (``DTYPE_SUBSTITUTES``) and the values survive the cast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

from unframe.shared_ir.tolerances import DEFAULT_ATOL, DEFAULT_RTOL

#: Per framework: element types it has no tensor type for -> the type it holds them in instead.
#: A validation accepts that substitution (values must still be equal after the cast) and says so.
DTYPE_SUBSTITUTES: dict[str, dict[np.dtype, np.dtype]] = {
    # caffe2.proto's TensorProto.DataType has no UINT32, UINT64 or BFLOAT16.
    "caffe2": {
        np.dtype(np.uint32): np.dtype(np.int64),
        np.dtype(np.uint64): np.dtype(np.int64),
        np.dtype(ml_dtypes.bfloat16): np.dtype(np.float32),
    },
}

#: What each flag on an output means: the comparison cannot show a difference there.
FLAG_MEANINGS: dict[str, str] = {
    "constant": "every reference value is the same, so any model that outputs that constant passes",
    "saturated": (
        "every reference value sits at the output's minimum or maximum (one-hot, as a saturated"
        " softmax or sigmoid), which hides changed weights"
    ),
    "near-constant": (
        "the reference's spread (std) is within atol + rtol*|value|, so the tolerances cannot see"
        " a change of the output's own size"
    ),
}

REAL_DATA_HINT = (
    "validate with real data: unframe validate SRC CONVERTED --inputs data.npz"
    " (one array per model input, named as the input)"
)


@dataclass
class OutputComparison:
    """How one output of the converted model compares with the reference's.

    ``rel_to_scale`` is ``max_abs`` over the standard deviation of the reference's finite values
    (None where that is zero or undefined); ``flags`` name why a pass may mean little
    (see ``FLAG_MEANINGS``).
    """

    name: str
    shape: list[int]
    max_abs: float
    max_rel: float
    mismatched: int
    total: int
    ok: bool
    note: str = ""
    dtype: str = ""
    reference_dtype: str = ""
    rel_to_scale: float | None = None
    flags: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["note"]:
            del data["note"]
        return data


@dataclass
class ComparisonReport:
    """Every output's comparison, plus what fails or weakens the comparison as a whole."""

    outputs: list[OutputComparison]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when something was compared and every output passed."""
        return not self.problems and bool(self.outputs) and all(o.ok for o in self.outputs)


def _as_float(array: np.ndarray) -> np.ndarray:
    # Narrow float types (float8 and the like) may hold NaN encodings numpy warns about: quiet.
    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(np.float64, copy=False)


def _is_text(dtype: np.dtype) -> bool:
    return dtype.kind in "OSU"


def _is_exact(dtype: np.dtype) -> bool:
    """Integers and bools: equal or not, no tolerance."""
    return dtype.kind in "biu"


def _substitution(
    reference: np.dtype, candidate: np.dtype, frameworks: Iterable[str]
) -> str | None:
    """Why ``candidate`` may stand for ``reference`` (one side's framework lacks a type), or None."""
    for framework in frameworks:
        table = DTYPE_SUBSTITUTES.get(framework, {})
        if table.get(reference) == candidate:
            return (
                f"{framework} has no {reference}, holds it as {candidate}; compared after the cast"
            )
        if table.get(candidate) == reference:
            return (
                f"{framework} has no {candidate}, holds it as {reference}; compared after the cast"
            )
    return None


def _exactly_equal(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Element-wise value equality of two integer/bool arrays, exact whatever their two types."""
    if actual.dtype == expected.dtype:
        return np.asarray(actual == expected)
    if actual.dtype.kind == "b" or expected.dtype.kind == "b":
        return np.asarray(actual.astype(np.int64) == expected.astype(np.int64))
    # numpy compares mixed signed/unsigned 64-bit values by value, not by bits.
    return np.asarray(actual == expected)


def _finite_values(expected: np.ndarray) -> np.ndarray:
    values = _as_float(expected).ravel()
    return values[np.isfinite(values)]


def _scale(expected: np.ndarray) -> float | None:
    """Standard deviation of the reference's finite values; None where it is zero or undefined."""
    if _is_text(expected.dtype):
        return None
    values = _finite_values(expected)
    if values.size < 2:
        return None
    std = float(values.std())
    return std if std > 0 else None


def insensitivity_flags(expected: np.ndarray, rtol: float, atol: float) -> list[str]:
    """Why the tolerances cannot see a difference on this reference output (``FLAG_MEANINGS``)."""
    if _is_text(expected.dtype) or expected.size < 2:
        return []
    values = _finite_values(expected)
    if values.size < 2:
        return []
    low, high = float(values.min()), float(values.max())
    if low == high:
        return ["constant"]
    if expected.dtype.kind not in "biu":
        # A value within rtol of the range from an extreme is, for the tolerance, at that extreme.
        band = rtol * (high - low)
        if values.size >= 3 and bool(np.all((values - low <= band) | (high - values <= band))):
            return ["saturated"]
        if float(values.std()) <= atol + rtol * float(np.abs(values).mean()):
            return ["near-constant"]
    return []


def compare_arrays(
    name: str,
    actual: np.ndarray,
    expected: np.ndarray,
    rtol: float,
    atol: float,
    *,
    against_scale: bool = False,
    frameworks: Sequence[str] = (),
) -> OutputComparison:
    """Compares ``actual`` (converted) with ``expected`` (reference).

    ``against_scale`` caps atol at ``rtol * std(expected)`` (validation does; onnx's node tests,
    which conformance mirrors, do not). ``frameworks`` are the two sides' frameworks, whose
    missing element types (``DTYPE_SUBSTITUTES``) excuse a dtype difference.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    shape = [int(d) for d in expected.shape]
    result = OutputComparison(
        name,
        shape,
        0.0,
        0.0,
        0,
        int(expected.size),
        True,
        dtype=str(actual.dtype),
        reference_dtype=str(expected.dtype),
        flags=insensitivity_flags(expected, rtol, atol),
    )
    if actual.shape != expected.shape:
        result.max_abs = result.max_rel = float("inf")
        result.mismatched = int(expected.size)
        result.ok = False
        result.note = f"shape {list(actual.shape)} differs from the reference's {shape}"
        return result
    notes: list[str] = []
    dtype_ok = True
    # An object array may hold any Python values; a string output may come back as str or object.
    same_family = _is_text(actual.dtype) and _is_text(expected.dtype)
    if actual.dtype != expected.dtype and not same_family and expected.dtype != object:
        excuse = _substitution(expected.dtype, actual.dtype, frameworks)
        if excuse is None:
            dtype_ok = False
            notes.append(f"dtype {actual.dtype} differs from the reference's {expected.dtype}")
        else:
            notes.append(excuse)
            if not (_is_exact(actual.dtype) and _is_exact(expected.dtype)):
                with np.errstate(invalid="ignore", over="ignore"):
                    actual = actual.astype(expected.dtype)
    if _is_text(expected.dtype) or _is_text(actual.dtype):
        equal = np.asarray(actual == expected)
        _set_exact_figures(result, equal, None)
    elif _is_exact(actual.dtype) and _is_exact(expected.dtype):
        _set_exact_figures(result, _exactly_equal(actual, expected), (actual, expected))
    else:
        notes.extend(_compare_floats(result, actual, expected, rtol, atol, against_scale))
    if result.mismatched:
        result.ok = False
    if not dtype_ok:
        result.ok = False
    result.note = "; ".join(notes)
    return result


def _set_exact_figures(
    result: OutputComparison,
    equal: np.ndarray,
    arrays: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    result.mismatched = int(np.size(equal) - np.count_nonzero(equal))
    if not result.mismatched:
        result.rel_to_scale = 0.0 if arrays is not None and _scale(arrays[1]) else None
        return
    if arrays is None:  # strings: no distance
        result.max_abs = result.max_rel = float("inf")
        return
    actual, expected = (_as_float(a) for a in arrays)
    # float64 cannot tell 2**60 from 2**60 + 1: an unequal pair is at least 1 apart.
    diff = np.where(equal, 0.0, np.maximum(np.abs(actual - expected), 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(expected))
    result.max_abs = float(diff.max())
    result.max_rel = float(rel.max())
    scale = _scale(arrays[1])
    result.rel_to_scale = result.max_abs / scale if scale else None


def _compare_floats(
    result: OutputComparison,
    actual: np.ndarray,
    expected: np.ndarray,
    rtol: float,
    atol: float,
    against_scale: bool,
) -> list[str]:
    """Fills the float figures of ``result``; returns notes (why the scale check failed)."""
    a = _as_float(actual)
    b = _as_float(expected)
    if a.size == 0:
        return []
    # NaN matches NaN and an infinity matches the same infinity, as in onnx's backend tests.
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    exact = both_nan | same_inf
    scale = _scale(expected)
    # The scale check only ever lowers atol: an output of values about 1e-2 is not judged by an
    # atol of 1e-5 meant for outputs of unit scale.
    effective_atol = min(atol, rtol * scale) if against_scale and scale else atol
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(exact, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        # An infinity that is not matched exactly fails: its diff is inf and it gets no rtol slack.
        magnitude = np.where(exact | ~np.isfinite(b), 0.0, np.abs(b))
        rel = np.where(diff == 0, 0.0, diff / np.maximum(magnitude, np.finfo(np.float64).tiny))
        failing = diff > effective_atol + rtol * magnitude
        plain_failing = diff > atol + rtol * magnitude
    result.mismatched = int(np.count_nonzero(failing))
    result.max_abs = float(diff.max())
    result.max_rel = float(rel.max())
    result.rel_to_scale = result.max_abs / scale if scale else None
    if result.mismatched and not np.any(plain_failing):
        return [
            f"within atol/rtol but not the output's scale (atol capped at rtol*std = "
            f"{effective_atol:.2g})"
        ]
    return []


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
    frameworks: Sequence[str] = (),
) -> list[OutputComparison]:
    """One comparison per reference output, each also judged against its own scale."""
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
                    reference_dtype=str(want.dtype),
                )
            )
        else:
            results.append(
                compare_arrays(
                    name,
                    np.asarray(got),
                    want,
                    rtol,
                    atol,
                    against_scale=True,
                    frameworks=frameworks,
                )
            )
    return results


def compare_models(
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    frameworks: Sequence[str] = (),
) -> ComparisonReport:
    """Compares two models' outputs: per output, plus whether anything was compared at all."""
    outputs = compare_outputs(actual, expected, rtol=rtol, atol=atol, frameworks=frameworks)
    report = ComparisonReport(outputs)
    if not expected:
        report.problems.append("the reference model has no outputs: nothing was compared")
    elif not actual:
        report.problems.append("the converted model has no outputs: nothing was compared")
    paired = {name for name, got, _ in match_outputs(actual, expected) if got is not None}
    if len(actual) > len(expected) and set(expected) <= set(actual):
        extra = sorted(set(actual) - set(expected))
        report.warnings.append(
            f"the converted model's outputs {', '.join(extra)} have no counterpart in the"
            " reference and were not compared"
        )
    elif len(actual) > len(expected) and paired:
        report.warnings.append(
            f"the converted model has {len(actual)} outputs and the reference {len(expected)};"
            f" only the first {len(expected)} were compared, by position"
        )
    by_flag: dict[str, list[str]] = {}
    for output in outputs:
        for flag in output.flags:
            by_flag.setdefault(flag, []).append(output.name)
    for flag, names in by_flag.items():
        report.warnings.append(
            f"{flag} output(s) {', '.join(names)}: {FLAG_MEANINGS[flag]}; {REAL_DATA_HINT}"
        )
    return report
