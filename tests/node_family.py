"""onnx's node tests for one family of PyTorch backend converters, checked one by one."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from unframe.converters.conformance import collect_node_tests, node_test_op, run_test
from unframe.converters.registry import get_framework


@functools.cache
def family_cases(ops: tuple[str, ...]) -> dict[str, Any]:
    """The node tests of ``ops`` by name (onnx collects them once per process)."""
    return {case.name: case for case in collect_node_tests(list(ops))}


def check_node_case(
    name: str,
    ops: Sequence[str],
    known_failures: Mapping[str, str] | None = None,
) -> None:
    """Runs one node test on the PyTorch backend and asserts it passes.

    ``known_failures`` xfail with their reason, but still run: one that now passes fails, so the
    list cannot go stale. A case needing converters of another family is not skipped: a missing
    converter fails here too.
    """
    outcome = run_test(get_framework("pytorch"), family_cases(tuple(ops))[name])
    if known_failures and name in known_failures:
        assert outcome.status != "pass", f"{name} now passes: remove it from the known failures"
        pytest.xfail(f"{known_failures[name]} ({outcome.reason})")
    assert outcome.status == "pass", outcome.reason


def ops_without_node_tests(ops: Sequence[str]) -> list[str]:
    covered = {node_test_op(case) for case in family_cases(tuple(ops)).values()}
    return sorted(set(ops) - covered)
