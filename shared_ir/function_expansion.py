"""Expands ONNX function ops a backend has no converter for into their schema's function body.

About fifty ONNX ops (Attention, LayerNormalization, SoftmaxCrossEntropyLoss, CastLike, Range,
Mish...) are defined in ``onnx.defs`` by a function body: a small graph of simpler ops that
*is* the op's meaning. An op-by-op backend that lacks a converter for one of them can convert
that body instead. :class:`ExpandFunctionsPass` replaces each node the backend cannot convert,
whose schema has a body at the model's opset, by the body's nodes, again inside the bodies
(bodies hold function ops too) and inside subgraphs. A node is expanded only where its whole
expansion converts: otherwise it stays as it is, so the backend's scan still names the node
the user wrote, and :func:`unsupported_after_expansion` says which body op was missing.

Each instance is built apart from the model, in a small model of its own (the body's nodes,
fed values typed like the caller's inputs), where ONNX's shape inference gives the types that
context-dependent bodies of nested function ops need; it is spliced in only once it is complete.
Expanded nodes and values are named after the node they replace (``attn`` becomes
``attn/MatMul_0``, ``attn/Softmax_0/Exp_0``...), so an error further on still says where it came
from. Attributes a body reads from its caller (``ref_attr_name``) take the caller's value, or
the schema's default where the caller leaves one out.

Bodies import their own opset (``Elu``'s is 18 in every model): where a body op's definition
differs between the body's opset and the model's, the instance goes through onnx's version
converter, and a body it cannot convert leaves the node unexpanded, with the reason.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import onnx
import onnx.defs
import onnx_ir as ir
from onnx import version_converter
from onnx_ir import _cloner
from onnx_ir.passes.common import RemoveUnusedNodesPass

from unframe.shared_ir.conversion import node_opset
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry, schema_since_version
from unframe.shared_ir.passes import infer_shapes
from unframe.shared_ir.traversal import all_values, iter_nodes

logger = logging.getLogger(__name__)

#: ``converts(domain, op_type, opset)``: whether the backend has a converter for the op.
Converts = Callable[[str, str, int], bool]

#: How deep function bodies may nest (Attention's body holds Softmax's, which holds none):
#: far above any body onnx defines, and a bound on a schema that would call itself.
MAX_DEPTH = 8


class _Refused(Exception):
    """A node that is left unexpanded, and why."""


@dataclass
class _Instance:
    """One node's body, built as a model of its own before it is spliced in.

    ``sources[i]`` is the position of the caller's input that feeds ``model.graph.inputs[i]``
    (a position, not the value: splicing another node first may replace that value);
    ``targets[j]`` is the caller's output that ``model.graph.outputs[j]`` replaces.
    """

    model: ir.Model
    sources: list[int]
    targets: list[ir.Value]


class _Names:
    """Node and value names in use in a model (subgraphs included), to keep new ones unique."""

    def __init__(self, model: ir.Model) -> None:
        self.nodes = {node.name for node in iter_nodes(model.graph) if node.name}
        self.values = {value.name for value in all_values(model.graph) if value.name}
        self.counts: collections.Counter[str] = collections.Counter()

    def node(self, prefix: str, op_type: str) -> str:
        """``prefix/OpType_k``, the k-th node of that op type under ``prefix`` (or at the top)."""
        while True:
            key = f"{prefix}/{op_type}" if prefix else op_type
            candidate = f"{key}_{self.counts[key]}"
            self.counts[key] += 1
            if candidate not in self.nodes:
                self.nodes.add(candidate)
                return candidate

    def value(self, wanted: str) -> str:
        candidate, index = wanted, 1
        while candidate in self.values:
            index += 1
            candidate = f"{wanted}_{index}"
        self.values.add(candidate)
        return candidate


def _domain(node: ir.Node) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def has_function_body(op_type: str, opset: int, domain: str = "") -> bool:
    """Whether ``op_type``'s schema at ``opset`` defines the op by a function body."""
    try:
        schema = _schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def registry_converts(registry: OpRegistry[Any]) -> Converts:
    """The ``converts`` predicate of a backend's op registry."""
    return lambda domain, op_type, opset: registry.supports(op_type, opset, domain)


class ExpandFunctionsPass(ir.passes.InPlacePass):
    """Replaces nodes ``converts`` refuses by their function bodies, where all of it converts.

    Attributes:
        expanded: nodes of the model the last run replaced by their bodies.
        refused: nodes the last run left as they are, with the reason (a body op without a
            converter, a body onnx cannot give at the model's opset...).
    """

    def __init__(self, converts: Converts) -> None:
        super().__init__()
        self.converts = converts
        self.expanded = 0
        self.refused: dict[ir.Node, str] = {}

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.expanded = 0
        self.refused = {}
        for node, instance in self._plan(model):
            _splice(node, instance)
            self.expanded += 1
        if self.expanded:
            logger.debug("expanded %d function node(s)", self.expanded)
        return ir.passes.PassResult(model, modified=self.expanded > 0)

    def _plan(self, model: ir.Model) -> list[tuple[ir.Node, _Instance]]:
        """Every expandable node with its complete instance; refusals go to ``refused``."""
        imports = dict(model.opset_imports)
        candidates = [node for node in iter_nodes(model.graph) if self._wants(node, imports)]
        if not candidates:
            return []
        if any(v is not None and v.type is None for n in candidates for v in n.inputs):
            infer_shapes(model)  # context-dependent bodies are built from their inputs' types
        names = _Names(model)
        planned = []
        for node in candidates:
            try:
                planned.append((node, self._instantiate(node, model, names, depth=0)))
            except _Refused as refusal:
                self.refused[node] = str(refusal)
        return planned

    def _wants(self, node: ir.Node, imports: dict[str, int]) -> bool:
        domain = _domain(node)
        opset = node_opset(domain, imports)
        return (
            opset is not None
            and not self.converts(domain, node.op_type, opset)
            and has_function_body(node.op_type, opset, domain)
        )

    def _instantiate(self, node: ir.Node, model: ir.Model, names: _Names, depth: int) -> _Instance:
        """``node``'s body as a model of its own, every function op in it expanded in turn."""
        if depth >= MAX_DEPTH:
            raise _Refused(f"function bodies nest deeper than {MAX_DEPTH} levels")
        imports = dict(model.opset_imports)
        instance = _build_instance(node, model, names)
        infer_shapes(instance.model)
        for inner in list(instance.model.graph):
            if self._wants(inner, imports):
                try:
                    _splice(inner, self._instantiate(inner, instance.model, names, depth + 1))
                except _Refused as refusal:
                    raise _Refused(f"{inner.op_type} in its body: {refusal}") from None
        missing = sorted(
            {
                inner.op_type
                for inner in iter_nodes(instance.model.graph)
                if not self.converts(
                    _domain(inner), inner.op_type, node_opset(_domain(inner), imports) or 0
                )
            }
        )
        if missing:
            raise _Refused(f"its function body needs {', '.join(missing)}")
        return instance


def expand_functions(model: ir.Model, registry: OpRegistry[Any]) -> ExpandFunctionsPass:
    """Runs :class:`ExpandFunctionsPass` for ``registry``'s backend on ``model``; returns the pass
    (its ``expanded`` and ``refused``). Backends call it first, before inference and folding."""
    expansion = ExpandFunctionsPass(registry_converts(registry))
    expansion(model)
    return expansion


def unsupported_after_expansion(model: ir.Model, registry: OpRegistry[Any]) -> list[UnsupportedOp]:
    """``registry.unsupported_nodes(model)`` less the nodes :class:`ExpandFunctionsPass` would
    expand; a node left unexpanded says why in its reason. The model is not changed (but for
    the types shape inference adds where a body needs them)."""
    missing = registry.unsupported_nodes(model)
    imports = dict(model.opset_imports)
    converts = registry_converts(registry)
    if not any(
        has_function_body(op.op_type, node_opset(op.domain, imports) or 0, op.domain)
        for op in missing
    ):
        return missing
    expansion = ExpandFunctionsPass(converts)
    planned = {id(node) for node, _ in expansion._plan(model)}  # noqa: SLF001 - a dry run
    # ``missing`` lists nodes in graph order: pair each entry with its node, names may repeat.
    nodes = iter_nodes(model.graph)
    found = []
    for op in missing:
        node = next(
            (n for n in nodes if (n.name or "") == op.node and n.op_type == op.op_type), None
        )
        if node is not None and id(node) in planned:
            continue
        reason = expansion.refused.get(node) if node is not None else None
        found.append(op if reason is None else _with_reason(op, reason))
    return found


def _with_reason(op: UnsupportedOp, reason: str) -> UnsupportedOp:
    return UnsupportedOp(op.node, op.op_type, op.domain, op.opset, f"{op.reason}; {reason}")


# -- building one instance -------------------------------------------------------------------------


def _schema(op_type: str, opset: int, domain: str) -> Any:
    # onnx's stubs leave out the function-body members of OpSchema (has_function...).
    return onnx.defs.get_schema(op_type, opset, domain)


def _function_proto(node: ir.Node, opset: int, domain: str) -> onnx.FunctionProto:
    schema = _schema(node.op_type, opset, domain)
    if any(
        isinstance(a, ir.Attr) and a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
        for a in node.attributes.values()
    ):
        raise _Refused("a function op taking a subgraph is not expanded")
    if schema.has_context_dependent_function:
        version = _body_version(schema.context_dependent_function_opset_versions, opset)
        types = []
        for value in node.inputs:
            if value is None:
                types.append(onnx.TypeProto().SerializeToString())
            elif value.type is None:
                raise _Refused(f"the type of input {value.name!r} is not known")
            else:
                # The value's type with its shape: builders read ranks (RotaryEmbedding's).
                types.append(ir.serde.serialize_value(value).type.SerializeToString())
        body = schema.get_context_dependent_function_with_opset_version(
            version, ir.serde.serialize_node(node).SerializeToString(), types
        )
    else:
        body = schema.get_function_with_opset_version(
            _body_version(schema.function_opset_versions, opset)
        )
    if not body:
        raise _Refused(f"onnx gives no function body for opset {opset}")
    return onnx.FunctionProto.FromString(body)


def _body_version(versions: Iterable[int], opset: int) -> int:
    """The newest body defined at or before the model's opset (else the oldest there is)."""
    known = sorted(int(v) for v in versions)
    earlier = [v for v in known if v <= opset]
    return earlier[-1] if earlier else known[0]


def _attribute_values(
    node: ir.Node, function: ir.Function, opset: int, domain: str
) -> dict[str, ir.Attr]:
    """The values a body's ``ref_attr_name``s read: the caller's, else the function's own
    defaults, else the schema's."""
    values: dict[str, ir.Attr] = {}
    schema = onnx.defs.get_schema(node.op_type, opset, domain)
    for name, attribute in schema.attributes.items():
        if attribute.default_value.name:
            values[name] = ir.serde.deserialize_attribute(attribute.default_value)
    values.update(
        (name, attr) for name, attr in function.attributes.items() if attr.value is not None
    )
    values.update(
        (name, attr) for name, attr in node.attributes.items() if isinstance(attr, ir.Attr)
    )
    return values


def _build_instance(node: ir.Node, model: ir.Model, names: _Names) -> _Instance:
    imports = dict(model.opset_imports)
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    opset = node_opset(domain, imports)
    assert opset is not None  # _wants checked it
    proto = _function_proto(node, opset, domain)
    # Context-dependent bodies compute only the outputs the node asks for, yet declare them all.
    known = {*proto.input, *(name for body_node in proto.node for name in body_node.output)}
    positions = [index for index, name in enumerate(proto.output) if name in known]
    kept = [proto.output[index] for index in positions]
    del proto.output[:]
    proto.output.extend(kept)
    function = ir.serde.deserialize_function(proto)
    # An unnamed node is not named here (a dry run leaves the model as it is): its body is.
    prefix = node.name or names.node("", node.op_type)

    sources: list[int] = []
    inputs: dict[ir.Value, ir.Value] = {}
    value_map: dict[ir.Value, ir.Value | None] = {}
    for index, formal in enumerate(function.inputs):
        actual = node.inputs[index] if index < len(node.inputs) else None
        if actual is None:
            value_map[formal] = None
            continue
        if actual not in inputs:
            inputs[actual] = ir.Value(
                name=names.value(f"{prefix}/{formal.name or 'input'}"),
                type=actual.type,
                shape=actual.shape.copy() if actual.shape is not None else None,
            )
            sources.append(index)
        value_map[formal] = inputs[actual]

    def rename(clone: ir.Node) -> None:
        clone.name = names.node(prefix, clone.name or clone.op_type)
        for output in clone.outputs:
            output.name = names.value(f"{prefix}/{output.name or 'value'}")

    cloner = _cloner.Cloner(
        attr_map=_attribute_values(node, function, opset, domain),
        value_map=value_map,
        metadata_props={},
        post_process=rename,
        resolve_ref_attrs=True,
    )
    nodes = [cloner.clone_node(body_node) for body_node in function]
    outputs: list[ir.Value] = []
    targets: list[ir.Value] = []
    for index, formal in zip(positions, function.outputs, strict=True):
        target = node.outputs[index] if index < len(node.outputs) else None
        if target is None or not (target.uses() or target.is_graph_output()):
            continue
        produced = value_map.get(formal)
        if produced is None:
            raise _Refused(f"its function body does not compute output {formal.name!r}")
        if produced.producer() is None or produced in outputs:
            # The body hands an input (or one value twice) out: an output needs a node of its own.
            copy = ir.Node("", "Identity", [produced], name=names.node(prefix, "Identity"))
            copy.outputs[0].name = names.value(f"{prefix}/{formal.name or 'output'}")
            nodes.append(copy)
            produced = copy.outputs[0]
        outputs.append(produced)
        targets.append(target)
    graph = ir.Graph(
        list(inputs.values()),
        outputs,
        nodes=nodes,
        opset_imports=dict(function.opset_imports),
        name=prefix,
    )
    instance = _Instance(ir.Model(graph, ir_version=model.ir_version), sources, targets)
    RemoveUnusedNodesPass()(instance.model)  # outputs the caller does not read need no ops
    return _at_model_opsets(instance, imports, names, prefix)


def _at_model_opsets(
    instance: _Instance, imports: dict[str, int], names: _Names, prefix: str
) -> _Instance:
    """The instance with the model's opset imports; through onnx's version converter where a
    body op's definition differs between the body's opset and the model's."""
    body_imports = dict(instance.model.opset_imports)
    for domain in body_imports:
        if domain not in ("", "ai.onnx") and domain not in imports:
            raise _Refused(f"its function body imports domain {domain!r}, which the model does not")
    differs = False
    for node in iter_nodes(instance.model.graph):
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        body_version, model_version = body_imports.get(domain), imports.get(domain)
        if body_version is None or model_version is None:
            raise _Refused(f"its function body uses {node.op_type} of a domain it does not import")
        if body_version != model_version and schema_since_version(
            node.op_type, body_version, domain
        ) != schema_since_version(node.op_type, model_version, domain):
            differs = True
    instance.model.opset_imports.clear()
    instance.model.opset_imports.update(
        {domain: imports[domain] for domain in body_imports if domain in imports}
    )
    if not differs:
        return instance
    instance.model.opset_imports.update(body_imports)
    try:
        converted = version_converter.convert_version(
            ir.to_proto(instance.model), imports.get("", imports.get("ai.onnx", 0))
        )
    except Exception as error:  # noqa: BLE001 - the converter raises bare RuntimeErrors
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _Refused(
            f"its function body (opset {body_imports.get('')}) does not convert to the model's "
            f"opset: {reason}"
        ) from None
    model = ir.from_proto(converted)
    for node in model.graph:
        if not node.name:
            node.name = names.node(prefix, node.op_type)
    return _Instance(model, instance.sources, instance.targets)


def _splice(node: ir.Node, instance: _Instance) -> None:
    """Puts ``instance``'s nodes in place of ``node`` in its graph, its outputs under the names
    of ``node``'s."""
    graph = node.graph
    assert graph is not None
    body = instance.model.graph
    for formal, position in zip(body.inputs, instance.sources, strict=True):
        actual = node.inputs[position]
        assert actual is not None
        formal.replace_all_uses_with(actual)
    results = list(body.outputs)
    body.outputs.clear()
    nodes = list(body)
    body.remove(nodes)
    graph.insert_before(node, nodes)
    for old, new in zip(instance.targets, results, strict=True):
        name = old.name
        if old.type is not None:
            new.type = old.type
        if old.shape is not None:
            new.shape = old.shape
        old.replace_all_uses_with(new, replace_graph_outputs=True)
        old.name = None
        new.name = name
    graph.remove(node, safe=True)


__all__ = [
    "MAX_DEPTH",
    "Converts",
    "ExpandFunctionsPass",
    "expand_functions",
    "has_function_body",
    "registry_converts",
    "unsupported_after_expansion",
]
