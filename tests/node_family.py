"""onnx's node tests for one family of PyTorch backend converters, checked one by one."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from unframe.converters.conformance import collect_node_tests, node_test_op, run_test
from unframe.converters.registry import get_framework

_UNSUPPORTED = "unsupported: no converter for "


@functools.cache
def family_cases(ops: tuple[str, ...]) -> dict[str, Any]:
    """The node tests of ``ops`` by name (onnx collects them once per process)."""
    return {case.name: case for case in collect_node_tests(list(ops))}


def check_node_case(
    name: str,
    ops: Sequence[str],
    known_failures: Mapping[str, str] | None = None,
    *,
    skip_other_families: bool = False,
) -> None:
    """Runs one node test on the PyTorch backend and asserts it passes.

    ``known_failures`` xfail with their reason. With ``skip_other_families``, an ``*_expanded``
    case that fails only for want of converters outside ``ops`` is skipped, saying which.
    """
    if known_failures and name in known_failures:
        pytest.xfail(known_failures[name])
    outcome = run_test(get_framework("pytorch"), family_cases(tuple(ops))[name])
    if skip_other_families and outcome.status == "fail" and outcome.reason.startswith(_UNSUPPORTED):
        missing = set(outcome.reason.removeprefix(_UNSUPPORTED).split(", "))
        if not missing & set(ops):
            pytest.skip(f"needs converters of another family: {', '.join(sorted(missing))}")
    assert outcome.status == "pass", outcome.reason


def ops_without_node_tests(ops: Sequence[str]) -> list[str]:
    covered = {node_test_op(case) for case in family_cases(tuple(ops)).values()}
    return sorted(set(ops) - covered)
