"""Where a conversion goes wrong: the earliest node of the source whose output the converted model
does not reproduce.

Two searches, both over the source graph's topological order:

- **by names** (``locate_by_names``): both models are imported into the IR, where every value the
  two share by name (name provenance: the backends write the source's value names, the frontends
  read them back, or a converted op is scoped by the source node's name, as TensorFlow's are) is
  exposed as a graph output; one run of each on onnxruntime gives every shared value (the
  converted model runs on its own runtime instead where that can expose its values:
  ``Framework.run_exposing``), and the first source node with a differing output is the answer. The converted model's weights are
  also compared with the source's, by name, without a run.
- **by bisection** (``locate_by_bisection``), where no name is shared: the prefix of the source up to
  a node (the subgraph that computes its output) is converted with the target's backend and run on
  the target's runtime, halving the range each time, so a search costs O(log n) conversions. It
  finds what the backend converts wrongly; a converted model edited after its conversion differs
  from what the backend makes, which the search reports when no prefix differs.

A located node is only as good as the search's assumption: once a value differs, later values
differ too (a ReLU can hide a difference in negative values; such a node is missed, not invented).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnx_ir as ir

from unframe.shared_ir.compare import OutputComparison, compare_arrays
from unframe.shared_ir.inputs import align_feeds
from unframe.shared_ir.options import ConvertOptions
from unframe.shared_ir.runner import run_reference

if TYPE_CHECKING:
    from unframe.converters.framework import Framework

__all__ = [
    "InputCheck",
    "LocateResult",
    "locate",
    "locate_by_bisection",
    "locate_by_names",
    "run_exposing",
]

#: Where a frontend keeps a value's name in the native model when it renamed it to the source's.
NATIVE_NAME = "unframe.native_name"


@dataclass
class InputCheck:
    """One input of the located node: what it is and how the converted model's copy compares.

    ``kind`` is ``"input"`` (a graph input, fed the same on both sides), ``"weight"`` (an
    initializer, compared with the converted model's of the same name) or ``"value"`` (another
    node's output). ``compared`` is False where the converted side has no value of that name.
    """

    name: str
    kind: str
    compared: bool
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "compared": self.compared,
            "ok": self.ok,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class LocateResult:
    """The first node of the source whose output differs in the converted model, if one was found.

    ``max_abs``/``max_rel`` are the node's output's error; ``inputs_ok`` says whether every input
    computed upstream (graph inputs and other nodes' outputs) matched, so that the difference starts
    here (None where one could not be compared). ``runs`` counts extra runs of each side (by
    names), ``conversions`` the prefixes converted (by bisection).
    """

    found: bool
    method: str
    how: str
    node: str | None = None
    op: str | None = None
    output: str | None = None
    converted_name: str | None = None
    max_abs: float = 0.0
    max_rel: float = 0.0
    inputs_ok: bool | None = None
    inputs: list[InputCheck] = field(default_factory=list)
    note: str = ""
    compared: int = 0
    runs: int = 0
    conversions: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "op": self.op,
            "converted_name": self.converted_name,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "inputs_ok": self.inputs_ok,
            "found": self.found,
            "method": self.method,
            "output": self.output,
            "inputs": [i.as_json() for i in self.inputs],
            "how": self.how,
            "note": self.note,
            "compared": self.compared,
            "runs": self.runs,
            "conversions": self.conversions,
            "seconds": round(self.seconds, 4),
        }


# -- running a model with its intermediate values exposed ---------------------------------------


def run_exposing(
    model: ir.Model, feeds: Mapping[str, np.ndarray], names: Iterable[str]
) -> tuple[dict[str, np.ndarray], str]:
    """Runs ``model`` on the reference runner with the values ``names`` added as graph outputs.

    The model is left as it was; returns the exposed values (and the graph's own outputs) by name,
    and the engine that ran it.
    """
    graph = model.graph
    by_name = {v.name: v for v in _node_outputs(graph)}
    kept = list(graph.outputs)
    present = {v.name for v in kept}
    added = [by_name[n] for n in dict.fromkeys(names) if n in by_name and n not in present]
    graph.outputs.extend(added)
    try:
        inputs = [v.name or "" for v in graph.inputs if v.name not in graph.initializers]
        result = run_reference(model, align_feeds(inputs, feeds))
    finally:
        del graph.outputs[len(kept) :]
    return result.outputs, result.engine


def _node_outputs(graph: ir.Graph) -> Iterable[ir.Value]:
    for node in graph:
        for value in node.outputs:
            if value.name:
                yield value


def _weight(model: ir.Model, name: str) -> np.ndarray | None:
    value = model.graph.initializers.get(name)
    tensor = value.const_value if value is not None else None
    if tensor is None:
        return None
    try:
        return np.asarray(tensor.numpy())
    except Exception:  # noqa: BLE001 - a weight we cannot read is one we cannot compare
        return None


def _converted_name(value: ir.Value | None) -> str | None:
    if value is None:
        return None
    return value.metadata_props.get(NATIVE_NAME) or value.name


# -- by names -----------------------------------------------------------------------------------


def shared_values(source: ir.Model, converted: ir.Model) -> dict[str, str]:
    """The source's node outputs the converted model also computes: source name -> converted name.

    A value matches one of the same name; failing that, a source node's first output matches the
    output of the last converted node whose name holds the source node's name as a scope (the
    TensorFlow backend scopes each op by its ONNX node: ``StatefulPartitionedCall/conv0/BiasAdd``
    computes node ``conv0``'s output). In source order.
    """
    theirs = {v.name for v in _node_outputs(converted.graph)}
    pairs = {v.name or "": v.name or "" for v in _node_outputs(source.graph) if v.name in theirs}
    scoped = [
        (f"/{node.name.strip('/')}/", node.outputs[0].name)
        for node in converted.graph
        if node.name and node.outputs and node.outputs[0].name
    ]
    source_names = [node.name for node in source.graph if node.name]
    unique = {name for name in source_names if source_names.count(name) == 1}
    for node in source.graph:
        if node.name not in unique or not node.outputs or node.outputs[0].name in pairs:
            continue
        scope = f"/{node.name.strip('/')}/"
        found = [name for path, name in scoped if scope in path and name not in pairs.values()]
        if found and found[-1]:
            pairs[node.outputs[0].name or ""] = found[-1]
    order = [v.name for v in _node_outputs(source.graph)]
    return {name: pairs[name] for name in order if name in pairs}


def locate_by_names(
    source: ir.Model,
    converted: ir.Model,
    feeds: Mapping[str, np.ndarray],
    *,
    rtol: float,
    atol: float,
    frameworks: Sequence[str] = (),
    converted_label: str = "the converted model",
    run_native: NativeRunner | None = None,
) -> LocateResult | None:
    """The first source node whose output differs in ``converted``, matched by value names.

    None where the two share no intermediate value name (then bisect). One run of each side, both
    on the reference runner with every shared value exposed.
    """
    started = time.perf_counter()
    pairs = shared_values(source, converted)
    graph_outputs = {v.name for v in source.graph.outputs}
    if not [n for n in pairs if n not in graph_outputs]:
        return None
    expected, engine = run_exposing(source, feeds, pairs)
    native = run_native(list(pairs.values())) if run_native is not None else None
    if native is not None:
        actual, converted_engine = native
        how_converted = f"SRC imported into the IR, {converted_label} run natively"
    else:
        actual, converted_engine = run_exposing(converted, feeds, pairs.values())
        how_converted = f"SRC and {converted_label} imported into the IR"
    theirs = {v.name: v for v in _node_outputs(converted.graph)}
    checks: dict[str, OutputComparison] = {}
    for name, converted_name in pairs.items():
        want, got = expected.get(name), actual.get(converted_name)
        if not isinstance(want, np.ndarray) or not isinstance(got, np.ndarray):
            continue
        if want.shape != got.shape:
            continue  # a name the two use for different things: not a match
        checks[name] = compare_arrays(
            name, got, want, rtol, atol, against_scale=True, frameworks=frameworks
        )
    how = (
        f"by names: {how_converted}, {len(checks)} shared values exposed, one run of each"
        f" ({engine} / {converted_engine})"
    )
    result = LocateResult(found=False, method="names", how=how, compared=len(checks), runs=1)
    for node in source.graph:
        failing = [
            checks[v.name] for v in node.outputs if v.name in checks and not checks[v.name].ok
        ]
        if not failing:
            continue
        first = failing[0]
        result.found = True
        result.node, result.op, result.output = node.name, node.op_type, first.name
        result.converted_name = _converted_name(theirs.get(pairs[first.name]))
        result.max_abs, result.max_rel = first.max_abs, first.max_rel
        result.inputs = [
            _input_check(value, source, converted, checks, rtol, atol, frameworks)
            for value in node.inputs
            if value is not None
        ]
        result.inputs_ok = _inputs_ok(result.inputs)
        result.note = _blame(result)
        break
    else:
        result.note = (
            f"every one of the {len(checks)} shared values agrees when both models are imported"
            " into the IR and run there: the difference comes from the converted model's runtime"
            " or from values the two do not share by name"
        )
    result.seconds = time.perf_counter() - started
    return result


def _input_check(
    value: ir.Value,
    source: ir.Model,
    converted: ir.Model,
    checks: Mapping[str, OutputComparison],
    rtol: float,
    atol: float,
    frameworks: Sequence[str],
) -> InputCheck:
    name = value.name or ""
    if value.is_graph_input() and name not in source.graph.initializers:
        return InputCheck(name, "input", True, True, note="fed the same on both sides")
    if name in source.graph.initializers or value.const_value is not None:
        want = _weight(source, name)
        got = _weight(converted, name)
        if want is None or got is None or want.shape != got.shape:
            return InputCheck(name, "weight", False, True, note="no weight of that name and shape")
        weight = compare_arrays(name, got, want, rtol, atol, frameworks=frameworks)
        note = "" if weight.ok else "the converted model holds different values for this weight"
        return InputCheck(name, "weight", True, weight.ok, weight.max_abs, weight.max_rel, note)
    check = checks.get(name)
    if check is None:
        return InputCheck(name, "value", False, True, note="not shared by name")
    return InputCheck(name, "value", True, check.ok, check.max_abs, check.max_rel)


def _inputs_ok(inputs: Sequence[InputCheck]) -> bool | None:
    upstream = [i for i in inputs if i.kind != "weight"]
    if any(i.compared and not i.ok for i in upstream):
        return False
    return True if all(i.compared for i in upstream) else None


def _blame(result: LocateResult) -> str:
    weights = [i.name for i in result.inputs if i.kind == "weight" and i.compared and not i.ok]
    if weights:
        return f"its weight(s) {', '.join(weights)} differ in the converted model"
    if result.inputs_ok:
        return "its inputs match and its output differs: the difference starts at this node"
    if result.inputs_ok is False:
        return "an input already differs: its producer is not shared by name"
    return "some inputs could not be compared; the difference starts here or just before"


# -- by bisection ------------------------------------------------------------------------------

#: Runs the converted model natively with the named values exposed: (values, what ran it), or
#: None where its runtime cannot expose them.
NativeRunner = Callable[[Sequence[str]], tuple[dict[str, np.ndarray], str] | None]

#: Converts a model with the target's backend, runs it, returns its outputs and what ran it.
PrefixRunner = Callable[[ir.Model, Mapping[str, np.ndarray]], dict[str, np.ndarray]]


def locate_by_bisection(
    source: ir.Model,
    run_converted: PrefixRunner,
    feeds: Mapping[str, np.ndarray],
    *,
    rtol: float,
    atol: float,
    frameworks: Sequence[str] = (),
    failing_outputs: Sequence[str] = (),
    backend_label: str = "the target backend",
) -> LocateResult:
    """The first source node whose output differs once the prefix up to it is converted.

    ``run_converted`` converts a prefix with the target's backend and runs it. SRC's own values
    come from one run with every node output exposed; the search then converts at most
    ``2 + ceil(log2(nodes))`` prefixes: the end, the halvings, and one last prefix that exposes
    the located node's inputs beside its output.
    """
    started = time.perf_counter()
    proto = ir.to_proto(source)
    nodes = list(proto.graph.node)
    expected, engine = run_exposing(source, feeds, [o for n in nodes for o in n.output if o])
    # A node is a candidate where its first output is a float tensor: what a backend computes.
    candidates = [
        index
        for index, node in enumerate(nodes)
        if node.output
        and isinstance(expected.get(node.output[0]), np.ndarray)
        and expected[node.output[0]].dtype.kind == "f"
    ]
    result = LocateResult(
        found=False,
        method="bisection",
        how="",
        runs=1,
        compared=0,
    )
    if not candidates:
        result.how = "by bisection: SRC has no node with a float output to compare"
        result.seconds = time.perf_counter() - started
        return result
    producers = {name: index for index, node in enumerate(nodes) for name in node.output if name}
    ends = [producers[o] for o in failing_outputs if o in producers]
    end = min(ends) if ends else max(producers.get(o.name, -1) for o in proto.graph.output)
    positions = [i for i, index in enumerate(candidates) if index <= end] or [len(candidates) - 1]

    notes: dict[int, str] = {}

    def differs(position: int) -> bool:
        index = candidates[position]
        name = nodes[index].output[0]
        check, note = _convert_and_compare(
            proto, index, [name], expected, run_converted, feeds, (rtol, atol), frameworks
        )
        result.conversions += 1
        if note:
            notes[position] = note
        return note != "" or not check[name].ok

    low, high = 0, positions[-1]
    if not differs(high):
        result.how = _bisection_how(result, engine, backend_label)
        result.note = (
            f"converting SRC up to node {nodes[candidates[high]].name!r} with {backend_label} again"
            " gives the same values: the converted model differs from what the backend makes now"
            " (edited after its conversion, or made by another version)"
        )
        result.seconds = time.perf_counter() - started
        return result
    while low < high:
        middle = (low + high) // 2
        if differs(middle):
            high = middle
        else:
            low = middle + 1
    index = candidates[high]
    node = nodes[index]
    result.found = True
    result.node, result.op, result.output = node.name, node.op_type, node.output[0]
    # The last prefix exposes the node's computed inputs beside its output (one more conversion).
    initializers = {init.name for init in proto.graph.initializer}
    graph_inputs = {value.name for value in proto.graph.input}
    upstream = [
        name
        for name in dict.fromkeys(node.input)
        if name and name not in initializers and name not in graph_inputs and name in expected
    ]
    checks, note = _convert_and_compare(
        proto,
        index,
        [*upstream, node.output[0]],
        expected,
        run_converted,
        feeds,
        (rtol, atol),
        frameworks,
    )
    result.conversions += 1
    result.note = note or notes.get(high, "")
    if node.output[0] in checks:
        result.max_abs = checks[node.output[0]].max_abs
        result.max_rel = checks[node.output[0]].max_rel
    for name in node.input:
        if not name:
            continue
        if name in graph_inputs and name not in initializers:
            result.inputs.append(InputCheck(name, "input", True, True, note="fed the same"))
        elif name in initializers:
            result.inputs.append(
                InputCheck(name, "weight", False, True, note="converted with the node")
            )
        elif name in checks:
            c = checks[name]
            result.inputs.append(InputCheck(name, "value", True, c.ok, c.max_abs, c.max_rel))
        else:
            result.inputs.append(InputCheck(name, "value", False, True, note="not compared"))
    result.inputs_ok = _inputs_ok(result.inputs)
    if not result.note:
        result.note = (
            "its inputs match and its output differs: the backend converts this node wrongly"
            if result.inputs_ok
            else "an input already differs where a node before it hides the difference"
        )
    result.how = _bisection_how(result, engine, backend_label)
    result.seconds = time.perf_counter() - started
    return result


def _bisection_how(result: LocateResult, engine: str, backend_label: str) -> str:
    return (
        f"by bisection: {result.conversions} prefixes of SRC converted with {backend_label} and"
        f" run; SRC's values from one run on {engine} with every node output exposed"
    )


def _convert_and_compare(
    proto: onnx.ModelProto,
    index: int,
    names: Sequence[str],
    expected: Mapping[str, np.ndarray],
    run_converted: PrefixRunner,
    feeds: Mapping[str, np.ndarray],
    tolerances: tuple[float, float],
    frameworks: Sequence[str],
) -> tuple[dict[str, OutputComparison], str]:
    """Converts SRC's prefix computing ``names`` (all made by node ``index`` or before) and compares.

    Returns the comparisons by name, and a note where the prefix failed to convert or run.
    """
    prefix = ir.from_proto(_prefix(proto, index, names, expected))
    try:
        outputs = run_converted(prefix, feeds)
    except Exception as error:  # noqa: BLE001 - a prefix that fails is a place where it goes wrong
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {}, f"the prefix up to this node fails to convert or run: {text[:300]}"
    if set(names) <= set(outputs):
        values = [outputs[name] for name in names]
    else:
        values = list(outputs.values())
    checks = {
        name: compare_arrays(
            name, np.asarray(got), expected[name], *tolerances, against_scale=True,
            frameworks=frameworks,
        )
        for name, got in zip(names, values, strict=False)
    }  # fmt: skip
    return checks, ""


def _prefix(
    proto: onnx.ModelProto, index: int, names: Sequence[str], expected: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """SRC cut down to the nodes (up to ``index``) that compute ``names``, which become its outputs."""
    nodes = proto.graph.node
    needed = set(names)
    kept: list[int] = []
    for position in range(index, -1, -1):
        node = nodes[position]
        if needed.intersection(node.output):
            kept.append(position)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:  # a subgraph may read outer values
                for graph in [attribute.g, *attribute.graphs]:
                    needed.update(_outer_names(graph))
    graph = onnx.GraphProto(name=proto.graph.name)
    graph.node.extend(nodes[position] for position in reversed(kept))
    weights = {i.name for i in proto.graph.initializer}
    # Every input, so that feeds keep their positions; an initializer's only where it is kept.
    graph.input.extend(v for v in proto.graph.input if v.name not in weights or v.name in needed)
    graph.initializer.extend(i for i in proto.graph.initializer if i.name in needed)
    graph.sparse_initializer.extend(
        i for i in proto.graph.sparse_initializer if i.values.name in needed
    )
    graph.value_info.extend(v for v in proto.graph.value_info if v.name in needed)
    for name in names:
        array = expected[name]
        elem_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
        graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type, None))
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    model.graph.CopyFrom(graph)
    return model


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    names: set[str] = set()
    for node in graph.node:
        names.update(name for name in node.input if name)
        for attribute in node.attribute:
            for inner in [attribute.g, *attribute.graphs]:
                names.update(_outer_names(inner))
    return names


# -- both, for a pair of frameworks -------------------------------------------------------------


def locate(
    source_model: ir.Model,
    converted_model: ir.Model | None,
    target_fw: Framework,
    feeds: Mapping[str, np.ndarray],
    *,
    options: ConvertOptions | None = None,
    rtol: float,
    atol: float,
    frameworks: Sequence[str] = (),
    failing_outputs: Sequence[str] = (),
    method: str = "auto",
    converted_path: Path | None = None,
) -> LocateResult:
    """Locates the first diverging node of ``source_model``: by names, else by bisection.

    ``converted_model`` is the converted model imported into the IR (None: bisect); ``target_fw``
    the target's ``Framework``, whose backend converts the prefixes when bisecting. ``method`` is
    ``"auto"``, ``"names"`` or ``"bisection"``. In ``"auto"``, where every shared value agrees in
    the IR (the difference comes from the target's runtime, which the IR does not run), the
    search goes on by bisection, whose prefixes do run on the target's runtime.
    """
    if method not in ("auto", "names", "bisection"):
        raise ValueError(f"unknown locate method {method!r}")
    by_names = None
    if method != "bisection" and converted_model is not None:
        by_names = locate_by_names(
            source_model,
            converted_model,
            feeds,
            rtol=rtol,
            atol=atol,
            frameworks=frameworks,
            run_native=native_runner(target_fw, converted_path, converted_model, feeds),
        )
        if by_names is not None and (by_names.found or method == "names"):
            return by_names
        if method == "names":
            return LocateResult(
                found=False,
                method="names",
                how="by names: SRC and the converted model share no intermediate value name",
                note="locate by bisection instead",
            )
    bisected = locate_by_bisection(
        source_model,
        prefix_runner(target_fw, options or ConvertOptions()),
        feeds,
        rtol=rtol,
        atol=atol,
        frameworks=frameworks,
        failing_outputs=failing_outputs,
        backend_label=f"the {target_fw.name} backend",
    )
    if by_names is not None:
        bisected.how = f"{by_names.how}, every one agreeing; then {bisected.how}"
        bisected.runs += by_names.runs
        bisected.compared = by_names.compared
        bisected.seconds += by_names.seconds
    return bisected


def native_runner(
    target_fw: Framework,
    path: Path | None,
    converted: ir.Model,
    feeds: Mapping[str, np.ndarray],
) -> NativeRunner | None:
    """The converted model run by its own runtime with values exposed, where that can be done."""
    if path is None or target_fw.runtime_unavailable() is not None:
        return None
    graph = converted.graph
    inputs = [v.name or "" for v in graph.inputs if v.name not in graph.initializers]

    def run(names: Sequence[str]) -> tuple[dict[str, np.ndarray], str] | None:
        outputs = target_fw.run_exposing(path, align_feeds(inputs, feeds), names)
        return None if outputs is None else (outputs, f"{target_fw.name}'s runtime")

    return run


def prefix_runner(target_fw: Framework, options: ConvertOptions) -> PrefixRunner:
    """Converts a prefix as a conversion would (passes, then the backend) and runs the result.

    On the target's runtime where it runs here; else the written model is imported back into the
    IR and run on the reference runner, as validation does.
    """
    from unframe.shared_ir import passes

    def run(model: ir.Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = passes.optimize(model)
        if target_fw.runtime_unavailable() is None:
            return dict(target_fw.run_ir(model, feeds, options))
        with tempfile.TemporaryDirectory(prefix="unframe-locate-") as tmp:
            path = Path(tmp) / f"prefix{target_fw.writes[0] if target_fw.writes else ''}"
            if target_fw.writes_directory:
                path.mkdir()
            target_fw.save(model, path, options)
            back = target_fw.load(path, options)
            names = [
                v.name or "" for v in back.graph.inputs if v.name not in back.graph.initializers
            ]
            return run_reference(back, align_feeds(names, feeds)).outputs

    return run
