"""Conformance against onnx's own backend node tests (``onnx.backend.test.case.node``).

Each test's model goes through a framework's exporter and its runtime (``Framework.run_ir``); where
the framework cannot run here, its adapter's ``run_ir`` imports the export back into the IR and runs
it on the reference runner. Outputs are compared at the test's own rtol/atol.
"""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.compare import compare_arrays
from unframe.shared_ir.errors import UnframeError, UnsupportedOp, UnsupportedOpsError

#: One node test may not take longer than this; a hung test fails instead of stalling the run.
TEST_TIMEOUT_SECONDS = 60


@dataclass
class NodeTestOutcome:
    test: str
    op: str
    status: str  # "pass", "fail" or "skip"
    reason: str = ""
    seconds: float = 0.0


@dataclass
class ConformanceReport:
    backend: str
    outcomes: list[NodeTestOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def ops(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for outcome in self.outcomes:
            table[outcome.op][outcome.status] += 1
        return {
            op: {"passed": c["pass"], "failed": c["fail"], "skipped": c["skip"]}
            for op, c in sorted(table.items())
        }

    def supported_ops(self) -> list[str]:
        """Ops all of whose tests pass (a skipped test does not count against an op)."""
        return [op for op, c in self.ops().items() if c["failed"] == 0 and c["passed"] > 0]

    def summary_line(self) -> str:
        return f"{self.count('pass')} passed, {self.count('fail')} failed, {self.count('skip')} skipped"

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "ops": self.ops(),
            "supported_ops": self.supported_ops(),
            "failures": [
                {"test": o.test, "op": o.op, "reason": o.reason}
                for o in self.outcomes
                if o.status == "fail"
            ],
        }

    def markdown(self, *, onnx_version: str, runtime_note: str, note: str = "") -> str:
        total = len(self.outcomes)
        passed = self.count("pass")
        rate = 100.0 * passed / total if total else 0.0
        lines = [
            f"# Conformance: `{self.backend}` backend",
            "",
            f"onnx {onnx_version} backend node tests, exported by unframe's `{self.backend}` "
            f"backend and run {runtime_note}. Regenerate with "
            f"`unframe conformance --backend {self.backend}`.",
            "",
            f"Pass rate: {passed}/{total} ({rate:.1f}%); ops with every test passing: "
            f"{len(self.supported_ops())} of {len(self.ops())}.",
            "",
            *([note.strip(), ""] if note.strip() else []),
            "| test | op | result | reason |",
            "| --- | --- | --- | --- |",
        ]
        lines += [markdown_row(o) for o in self.outcomes]
        lines += ["", self.summary_line(), ""]
        return "\n".join(lines)


def markdown_row(outcome: NodeTestOutcome) -> str:
    """One test's row of a report's table (the reason escaped for markdown and cut short)."""
    reason = outcome.reason.replace("|", "\\|").replace("\n", " ")[:300]
    return f"| {outcome.test} | {outcome.op} | {outcome.status} | {reason} |"


def parse_markdown_rows(text: str) -> list[NodeTestOutcome]:
    """The outcomes a report's table holds (reasons as the table holds them: cut short)."""
    outcomes = []
    for line in text.splitlines():
        parts = line.split(" | ")
        if len(parts) < 4 or not line.startswith("| ") or parts[2] not in ("pass", "fail", "skip"):
            continue
        reason = " | ".join(parts[3:])[: -len(" |")] if line.endswith(" |") else ""
        outcomes.append(
            NodeTestOutcome(parts[0][2:], parts[1], parts[2], reason.replace("\\|", "|"))
        )
    return outcomes


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


#: Test names that do not spell their op's name.
_TEST_NAME_ALIASES = {
    "nllloss": "NegativeLogLikelihoodLoss",
    "sce": "SoftmaxCrossEntropyLoss",
    "less_equal": "LessOrEqual",
    "greater_equal": "GreaterOrEqual",
    "rms_normalization": "RMSNormalization",
}


@functools.cache
def _op_name_forms() -> dict[str, str]:
    """Test-name spellings of every ONNX op: ``log_softmax`` and ``logsoftmax`` for LogSoftmax."""
    forms: dict[str, str] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        forms.setdefault(_snake(schema.name), schema.name)
        forms.setdefault(schema.name.lower(), schema.name)
    forms.update(_TEST_NAME_ALIASES)
    return forms


def node_test_op(case: Any) -> str:
    """The op a node test is about: its single op, else the op its name spells (``_expanded``)."""
    op_types = [node.op_type for node in case.model.graph.node]
    if len(set(op_types)) == 1:
        return op_types[0]
    name = case.name.removeprefix("test_")
    forms = _op_name_forms()
    matches = [
        form
        for form in forms
        if name.startswith(form) and (len(name) == len(form) or name[len(form)] == "_")
    ]
    if matches:
        return forms[max(matches, key=len)]
    return next((op for op in op_types if op != "Constant"), op_types[0] if op_types else "?")


@functools.cache
def _all_node_tests() -> tuple[Any, ...]:
    # onnx computes every expected output when collecting (about 15 s): once per process.
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return tuple(collect_testcases(None))


def collect_node_tests(
    ops: Sequence[str] | None = None, name_pattern: str | None = None
) -> list[Any]:
    """onnx's node test cases, optionally only those of ``ops`` or whose name matches a regex."""
    cases = _all_node_tests()
    wanted = {op.lower() for op in ops} if ops else None
    pattern = re.compile(name_pattern) if name_pattern else None
    selected = []
    for case in cases:
        if wanted is not None and node_test_op(case).lower() not in wanted:
            continue
        if pattern is not None and not pattern.search(case.name):
            continue
        selected.append(case)
    return sorted(selected, key=lambda c: c.name)


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except ValueError:  # not the main thread: run without a limit
        yield
        return
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _flatten(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, list | tuple):
        pairs = [(f"{name}[{i}]", item) for i, item in enumerate(value)]
        return pairs or [(f"{name}[]", np.zeros((0,)))]
    return [(name, value)]


def _unsupported_reason(unsupported: list[UnsupportedOp]) -> str:
    """Why a backend refuses a test's model: the op types without a converter, then the first
    reason given for each other refused op type (an element type, an attribute...)."""
    reasons: dict[str, str] = {}
    for entry in unsupported:
        reasons.setdefault(entry.qualified_type, entry.reason)
    missing = sorted(k for k, r in reasons.items() if r.startswith("no ") and "converter" in r)
    parts = [f"no converter for {', '.join(missing)}"] if missing else []
    parts += [
        f"{kind}: {reason}" for kind, reason in sorted(reasons.items()) if kind not in missing
    ]
    return f"unsupported: {'; '.join(parts)}"


def _as_value(value: Any) -> Any:
    """Test data as arrays: some cases hold TensorProto, SequenceProto or OptionalProto."""
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, onnx.SequenceProto):
        return numpy_helper.to_list(value)
    if isinstance(value, onnx.OptionalProto):
        return numpy_helper.to_optional(value)
    return value


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def run_test(framework: Framework, case: Any) -> NodeTestOutcome:
    """Exports one node test with ``framework`` and checks its outputs."""
    op = node_test_op(case)
    started = time.perf_counter()
    graph = case.model.graph
    try:
        model = ir.from_proto(case.model)
        unsupported = framework.unsupported_nodes(model)
        if unsupported:
            return NodeTestOutcome(case.name, op, "fail", _unsupported_reason(unsupported))
        for raw_inputs, raw_expected in case.data_sets:
            inputs = [_as_value(v) for v in raw_inputs]
            expected = [_as_value(v) for v in raw_expected]
            feeds = {graph.input[i].name: value for i, value in enumerate(inputs)}
            with _time_limit(TEST_TIMEOUT_SECONDS), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                actual = framework.run_ir(model, feeds, ConvertOptions())
            actual_values = list(actual.values())
            for index, want in enumerate(expected):
                name = graph.output[index].name
                got = actual.get(name, actual_values[index] if index < len(actual_values) else None)
                want_items, got_items = _flatten(name, want), _flatten(name, got)
                if len(want_items) != len(got_items):
                    return _fail(
                        case,
                        op,
                        started,
                        f"{name}: {len(got_items)} items, expected {len(want_items)}",
                    )
                for (item_name, want_item), (_, got_item) in zip(
                    want_items, got_items, strict=True
                ):
                    if got_item is None:
                        return _fail(case, op, started, f"{item_name}: missing output")
                    result = compare_arrays(
                        item_name, np.asarray(got_item), np.asarray(want_item), case.rtol, case.atol
                    )
                    if (
                        np.asarray(got_item).dtype != np.asarray(want_item).dtype
                        and np.asarray(want_item).dtype != object
                    ):
                        return _fail(
                            case,
                            op,
                            started,
                            f"{item_name}: dtype {np.asarray(got_item).dtype}, expected {np.asarray(want_item).dtype}",
                        )
                    if not result.ok:
                        detail = result.note or (
                            f"max abs error {result.max_abs:.3g}, {result.mismatched}/{result.total} "
                            "elements mismatched"
                        )
                        return _fail(case, op, started, f"{item_name}: {detail}")
    except UnsupportedOpsError as error:  # refusals a backend finds while converting, listed
        return _fail(case, op, started, _unsupported_reason(list(error.ops)))
    except (UnframeError, Exception) as error:  # noqa: BLE001 - one test's failure is a report line
        return _fail(case, op, started, _first_line(error))
    return NodeTestOutcome(case.name, op, "pass", "", time.perf_counter() - started)


def _fail(case: Any, op: str, started: float, reason: str) -> NodeTestOutcome:
    return NodeTestOutcome(case.name, op, "fail", reason, time.perf_counter() - started)


def run_conformance(
    framework: Framework,
    cases: Sequence[Any],
    progress: Callable[[NodeTestOutcome], None] | None = None,
) -> ConformanceReport:
    report = ConformanceReport(framework.name)
    for case in cases:
        outcome = run_test(framework, case)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return report


def write_report(report: ConformanceReport, path: Path, framework: Framework) -> None:
    reason = framework.runtime_unavailable()
    runtime_note = (
        f"on {framework.name}'s own runtime"
        if reason is None
        else f"through a round trip back into the IR on the reference runner ({reason})"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        report.markdown(
            onnx_version=onnx.__version__,
            runtime_note=runtime_note,
            note=framework.conformance_note,
        )
    )
