"""`unframe conformance --jobs`: node tests in worker processes, a dying worker costing one test."""

from __future__ import annotations

import pytest

from unframe.converters import conformance_isolated
from unframe.converters.conformance import collect_node_tests, node_test_op, run_test
from unframe.converters.registry import get_framework


def _tests(*ops: str) -> list[tuple[str, str]]:
    return [(case.name, node_test_op(case)) for case in collect_node_tests(list(ops))]


def test_workers_give_the_outcomes_a_run_in_this_process_gives() -> None:
    cases = collect_node_tests(["Relu", "Einsum"])
    framework = get_framework("caffe2")  # Einsum: refused, so both kinds of outcome appear
    here = [run_test(framework, case) for case in cases]
    done: list[int] = []
    isolated = conformance_isolated.run_isolated(
        "caffe2", [(c.name, node_test_op(c)) for c in cases], 2, done.append
    )
    assert [(o.test, o.op, o.status, o.reason) for o in isolated] == [
        (o.test, o.op, o.status, o.reason) for o in here
    ]
    assert {"pass", "fail"} <= {o.status for o in isolated}
    assert sum(done) == len(cases)


def test_a_test_whose_worker_dies_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    tests = _tests("Relu", "Sigmoid", "Tanh")
    deadly = tests[2][0]
    real_run_chunk = conformance_isolated._run_chunk
    chunks: list[list[str]] = []

    def run_chunk(backend: str, names: list[str], environment: dict[str, str]) -> object:
        chunks.append(list(names))
        if deadly in names:  # as LiteRT aborting on one model kills its whole process
            return "the runtime killed its process (SIGABRT)"
        return real_run_chunk(backend, names, environment)

    monkeypatch.setattr(conformance_isolated, "_run_chunk", run_chunk)
    outcomes = conformance_isolated.run_isolated("onnx", tests, 1)
    assert [o.test for o in outcomes] == [name for name, _ in tests]
    by_name = {o.test: o for o in outcomes}
    assert by_name[deadly].status == "fail"
    assert by_name[deadly].reason == "the runtime killed its process (SIGABRT)"
    assert all(o.status == "pass" for name, o in by_name.items() if name != deadly)
    assert [deadly] in chunks  # split down to the test alone
