"""The common pass pipeline every conversion runs between a frontend and a backend.

Built from onnx_ir's passes, onnxscript's optimizer and our one folding pass
(:class:`~unframe.shared_ir.folding.FoldConstantsPass`) rather than ad-hoc rewrites. Every pass
here is linear in the graph's size (``benchmarks/passes_chain.py`` measures it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import onnx
import onnx_ir as ir
import onnx_ir.passes.common as common
from onnx_ir.passes import PassManager

from unframe.shared_ir.folding import FOLD_SIZE_LIMIT, FOLDABLE_OPS, FoldConstantsPass
from unframe.shared_ir.lazy_imports import onnxscript_optimizer

logger = logging.getLogger(__name__)


def cleanup_passes(*, fold_constants: bool = True) -> PassManager:
    """Identity and dead-code elimination, a topological sort, then folding; always safe.

    Folding runs after the sort so that one sweep in order sees every producer before its users,
    and dead-code elimination runs again after it to drop what only the folded nodes used.
    """
    folding: list[ir.passes.PassBase] = (
        [FoldConstantsPass(), common.RemoveUnusedNodesPass()] if fold_constants else []
    )
    return PassManager(
        [
            KeepingOuterScopeIdentityEliminationPass(),
            common.RemoveUnusedNodesPass(),
            common.RemoveUnusedFunctionsPass(),
            SortIfUnsortedPass(),
            *folding,
        ]
    )


class KeepingOuterScopeIdentityEliminationPass(common.IdentityEliminationPass):
    """onnx_ir's Identity elimination, keeping a subgraph's ``out = Identity(outer)``.

    onnx_ir (1.1) renames the outer-scope value to the subgraph output's name and makes it the
    subgraph's output, which no node of the subgraph then produces: onnx's checker refuses that
    (an If branch returning a captured tensor, as tf2onnx writes for ``tf.cond``).
    """

    def _try_eliminate_identity_node(self, node: ir.Node) -> bool:
        if node.op_type == "Identity" and node.domain == "" and len(node.inputs) == 1:
            source, output = node.inputs[0], node.outputs[0]
            if source is not None and output.is_graph_output():
                producer = source.producer()
                owner = source.graph if producer is None else producer.graph
                if owner is not node.graph:
                    return False
        return super()._try_eliminate_identity_node(node)


class SortIfUnsortedPass(ir.passes.InPlacePass):
    """onnx_ir's topological sort, run only where some node comes before an input's producer.

    Models arrive sorted nearly always, and checking is a fraction of sorting's cost.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if _is_sorted(model):
            return ir.passes.PassResult(model, modified=False)
        return common.TopologicalSortPass()(model)


def _is_sorted(model: ir.Model) -> bool:
    graphs: list[ir.Graph | ir.Function] = [model.graph, *model.functions.values()]
    for graph in graphs:
        # Nodes of subgraphs come right after their parent: values of the enclosing scopes are
        # then all produced by nodes seen before.
        seen: set[ir.Node] = set()
        for node in ir.traversal.RecursiveGraphIterator(graph):
            for value in node.inputs:
                producer = value.producer() if value is not None else None
                if producer is not None and producer not in seen and producer is not node:
                    return False
            seen.add(node)
    return True


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    # onnxscript and onnx_ir log a line per skipped rewrite; a converter's CLI must stay quiet.
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger_ in loggers:
        logger_.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger_, level in zip(loggers, levels, strict=True):
            logger_.setLevel(level)


class _RulesByRootOp:
    """onnxscript's rewrite rules, each tried only on nodes of its pattern's root op type.

    onnxscript's ``RewriteRuleSet`` tries every rule on every node; with ~45 rules, most of the
    optimizer's time went into matches that fail at the first node. This one rule-like object
    stands for them all: it looks the node's op type up, then tries the rules of that op (and
    those whose root matches any op) in their original order, so the first rule that matches is
    the one onnxscript would have applied. Attributes the rule set reads after a match
    (``name``, ``as_function``, ``remove_nodes``) are the matched rule's.
    """

    def __init__(self, rules: Sequence[Any]) -> None:
        self._rules = list(rules)
        self._any_op = [rule for rule in self._rules if _root_op(rule) is None]
        self._by_op: dict[tuple[str, str], list[Any]] = {}
        for rule in self._rules:
            root = _root_op(rule)
            if root is not None:
                self._by_op.setdefault(root, [])
        for key, bucket in self._by_op.items():
            bucket.extend(rule for rule in self._rules if _root_op(rule) in (key, None))
        self._matched: Any = None

    def try_rewrite(self, model: Any, graph: Any, node: ir.Node, **kwargs: Any) -> Any:
        domain = "" if node.domain == "ai.onnx" else node.domain
        for rule in self._by_op.get((domain, node.op_type), self._any_op):
            delta = rule.try_rewrite(model, graph, node, **kwargs)
            if delta is not None:
                self._matched = rule
                return delta
        return None

    def graph_pre_visitor(self) -> None:
        for rule in self._rules:
            if rule.graph_pre_visitor:
                rule.graph_pre_visitor()

    def graph_post_visitor(self) -> None:
        for rule in self._rules:
            if rule.graph_post_visitor:
                rule.graph_post_visitor()

    @property
    def remove_nodes(self) -> bool:
        if self._matched is None:
            return all(rule.remove_nodes for rule in self._rules)
        return bool(self._matched.remove_nodes)

    @property
    def as_function(self) -> bool:
        return bool(self._matched is not None and self._matched.as_function)

    @property
    def name(self) -> str | None:
        return None if self._matched is None else self._matched.name


def _root_op(rule: Any) -> tuple[str, str] | None:
    """The (domain, op type) a rule's pattern is rooted at, or None where it matches any op."""
    identifier = rule._target_pattern.output_nodes[0].op_identifier()  # noqa: SLF001
    if identifier is None:
        return None
    domain, op_type = identifier[0], identifier[1]
    return ("" if domain == "ai.onnx" else domain, op_type)


def _linear_rewrite_rules() -> list[Any]:
    """onnxscript's default rewrite rules, less those whose matching is quadratic.

    Rules whose pattern has several output nodes (``SlicesSplit``) are matched by enumerating
    every node of the graph for every candidate node (onnxscript's ``SimplePatternMatcher``
    rebuilds its op-type index per call): O(n^2), 66 s on a 10,000-node chain. They are left
    out until onnxscript indexes the graph once per pass. So are the Min/Max fusions
    (``_MIN_MAX_RULES``): in onnxscript 0.7.2 they name each new bound after the shared input, and
    where two Min/Max pairs read one value (a TFLite LSTM reads back so) the second pair's bounds
    join no graph: an invalid model.
    """
    with onnxscript_optimizer():  # only what this needs of onnxscript (issue #15)
        from onnxscript import rewriter

        return [
            rule
            for rule in rewriter._DEFAULT_REWRITE_RULES  # noqa: SLF001 - the default rule list
            if rule._target_pattern.has_single_output_node  # noqa: SLF001
            and getattr(rule, "name", None) not in _MIN_MAX_RULES
        ]


#: onnxscript's Min/Max fusion rules (``rules.common._min_max_to_clip``), left out: see above.
_MIN_MAX_RULES = frozenset(
    {"FuseSuccessiveMin", "FuseSuccessiveMax", "FuseMinMaxToClip", "FuseMaxMinToClip"}
)


def _should_fold(node: ir.Node) -> bool | None:
    # One op set for all folding: onnxscript folds what FoldConstantsPass would, no more.
    return None if node.op_type in FOLDABLE_OPS else False


def onnxscript_optimizer_passes(
    rules: Sequence[Any] | None = None, *, exporter_folding: bool = False
) -> ir.passes.Sequential:
    """onnxscript's ``optimize_ir`` pipeline, made linear and limited to our op set and size.

    The same passes in the same order as ``onnxscript.optimizer.optimize_ir`` (which builds them
    without letting a caller choose the rules), with the rewrite rules of
    :func:`_linear_rewrite_rules` and folding restricted to ``FOLDABLE_OPS`` and
    ``FOLD_SIZE_LIMIT``. ``exporter_folding`` folds as ``torch.onnx.export(optimize=True)`` does
    instead (onnxscript's defaults: node shape inference, a weight's only ``Transpose`` folded
    into it), so a PyTorch export can skip torch.onnx's own run of the optimizer, whose rule
    matching tries every rule on every node (``_RulesByRootOp``). Build and run the passes
    within ``onnxscript_optimizer()`` (``shared_ir/lazy_imports.py``).
    """
    with onnxscript_optimizer():  # only what this needs of onnxscript (issue #15)
        from onnxscript import rewriter
        from onnxscript.optimizer import _constant_folding

    rule_set = rewriter.RewriteRuleSet([_RulesByRootOp(rules or _linear_rewrite_rules())])  # type: ignore[list-item]
    folding = (
        _constant_folding.FoldConstantsPass(
            shape_inference=True,
            input_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT,
            output_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_OUTPUT_SIZE_LIMIT,
            should_fold=lambda node: None,
        )
        if exporter_folding
        else _constant_folding.FoldConstantsPass(
            shape_inference=False,
            input_size_limit=FOLD_SIZE_LIMIT,
            output_size_limit=FOLD_SIZE_LIMIT,
            should_fold=_should_fold,
        )
    )
    return ir.passes.Sequential(
        common.InlinePass(),
        PassManager(
            [
                folding,
                rewriter.RewritePass(rule_set),
                common.RemoveUnusedNodesPass(),
                common.RemoveUnusedFunctionsPass(),
                common.RemoveUnusedOpsetsPass(),
            ],
            steps=2,
            early_stop=True,
        ),
        common.RemoveUnusedNodesPass(),
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common.LiftSubgraphInitializersToMainGraphPass(),
        common.DeduplicateInitializersPass(),
        common.CommonSubexpressionEliminationPass(),
        common.OutputFixPass(),
        common.NameFixPass(),
    )


def optimize_torch_export(model: ir.Model) -> None:
    """What ``torch.onnx.export(optimize=True)`` runs on its model, in place, in linear time.

    onnxscript's ``optimize_ir`` with the exporter's folding, then its opset-23 fusions, as
    onnxscript's ``torch_2_8.optimize`` does; the rewrite rules are tried by root op
    (``_RulesByRootOp``): torch.onnx's own run spent ~30 s of a 1B-parameter LLaMA's export
    trying every rule on every node.
    """
    with _quiet_loggers(), onnxscript_optimizer():  # onnxscript whole here: torch.onnx's import
        from onnxscript.rewriter import onnx_fusions

        onnxscript_optimizer_passes(exporter_folding=True)(model)
        onnx_fusions.fuse(model)


def optimize(
    model: ir.Model,
    *,
    fold_constants: bool = True,
    reload: Callable[[], ir.Model] | None = None,
) -> ir.Model:
    """Runs onnxscript's optimizer, then the cleanup passes and our folding; returns the result.

    Where the optimizer fails, the model passed on is one it has not touched, and the reason is
    logged at debug level (``unframe --debug`` shows it): with ``reload`` (a caller that can
    read its source again, as a conversion can), the optimizer works in place and the failure
    costs a reload; without, it works on a copy (tensors are shared, nodes are not: on a long
    graph the copy costs about as much as the rewriting). Use the returned model.
    Graph inputs, outputs and their names are kept: scripts and validation match on them.
    ``fold_constants=False`` runs only the cleanup: no optimizer, no folding.
    """
    with _quiet_loggers():
        if fold_constants:
            candidate = model if reload is not None else model.clone()
            try:
                with onnxscript_optimizer():
                    onnxscript_optimizer_passes()(candidate)
            except Exception as error:  # noqa: BLE001 - the optimizer is optional; say why in --debug
                logger.debug(
                    "onnxscript's optimizer failed; the model goes on without it: %s: %s",
                    type(error).__name__,
                    error,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                if reload is not None:
                    model = reload()
            else:
                model = candidate
        cleanup_passes(fold_constants=fold_constants)(model)
    return model


def infer_shapes(model: ir.Model, *, data_prop: bool = False) -> ir.Model:
    """ONNX shape and type inference, filling in the IR values' types and shapes in place.

    onnx sees the graph without the weights' data (onnx_ir's ``call_onnx_api``), so this
    neither copies nor serializes large models. What onnx infers is merged into the IR value by
    value, walking both graphs side by side: onnx_ir's ``ShapeInferencePass`` instead builds a
    second IR of the whole inferred model, ~20x the cost of inference itself on long graphs.
    Inference is best effort: where it fails, the model is unchanged.
    """
    import onnx
    from onnx_ir.passes.common import _c_api_utils

    def infer(proto: onnx.ModelProto) -> onnx.ModelProto:
        return onnx.shape_inference.infer_shapes(
            proto, check_type=False, strict_mode=False, data_prop=data_prop
        )

    with _quiet_loggers():
        try:
            inferred = _c_api_utils.call_onnx_api(infer, model)  # noqa: SLF001
        except Exception as error:  # noqa: BLE001 - a partial model still converts
            logger.debug("shape inference failed: %s: %s", type(error).__name__, error)
            return model
    _merge_inferred(model.graph, inferred.graph)
    return model


def _merge_inferred(graph: ir.Graph, inferred: Any) -> None:
    """Copies onnx's inferred types and shapes into ``graph`` (and its subgraphs) by name.

    ``inferred`` is onnx's ``GraphProto`` of ``graph``, whose nodes are ours in the same order.
    """
    types = {info.name: info.type for info in (*inferred.input, *inferred.value_info)}
    types.update((info.name, info.type) for info in inferred.output)
    values = [*graph.inputs, *graph.initializers.values()]
    for node in graph:
        values.extend(node.outputs)
    for value in values:
        type_proto = types.get(value.name or "")
        if type_proto is None or not type_proto.HasField("tensor_type"):
            continue
        tensor_type = type_proto.tensor_type
        if tensor_type.HasField("shape"):
            dims = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tensor_type.shape.dim
            ]
            if value.shape is None or list(value.shape) != dims:
                value.shape = ir.Shape(dims)
        if tensor_type.elem_type and value.dtype is None:
            value.dtype = ir.DataType(tensor_type.elem_type)
    for node, node_proto in zip(graph, inferred.node, strict=False):
        if node_proto.op_type != node.op_type:
            return  # not the graph we serialized: leave the rest as it is
        for attr_proto in node_proto.attribute:
            attr = node.attributes.get(attr_proto.name)
            if not isinstance(attr, ir.Attr):
                continue
            if attr.type == ir.AttributeType.GRAPH and attr_proto.HasField("g"):
                _merge_inferred(attr.as_graph(), attr_proto.g)
            elif attr.type == ir.AttributeType.GRAPHS:
                for subgraph, subgraph_proto in zip(
                    attr.as_graphs(), attr_proto.graphs, strict=False
                ):
                    _merge_inferred(subgraph, subgraph_proto)


def infer_node_types(node: ir.Node, opset: int) -> None:
    """Sets ``node``'s output types and shapes from ONNX's inference of the node alone.

    For op-by-op frontends, which build the IR one node at a time. Inference reads the values of
    shape-like inputs (shapes, axes, scales, pads): small, and integers but for Resize's scales,
    so a Conv's bias is never serialized for it. Inference is a help: where it fails, the outputs
    stay as they are, and a converter that needs a shape says so.
    """
    if any(v is not None and v.type is None for v in node.inputs):
        return
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
        proto = ir.serde.serialize_node(node)
        types = {
            v.name: ir.serde.serialize_value(v).type
            for v in node.inputs
            if v is not None and v.name
        }
        data = {
            v.name: ir.serde.serialize_tensor(v.const_value)
            for v in node.inputs
            if v is not None
            and v.name
            and v.const_value is not None
            and v.const_value.size < (1024 if v.dtype is not None and v.dtype.is_integer() else 64)
        }
        opsets = [onnx.helper.make_opsetid("", opset)]
        inferred = onnx.shape_inference.infer_node_outputs(schema, proto, types, data, None, opsets)
    except Exception:  # noqa: BLE001 - inference is a help, never an error
        return
    for value in node.outputs:
        type_proto = inferred.get(value.name or "")
        if type_proto is None or not type_proto.HasField("tensor_type"):
            continue
        tensor = type_proto.tensor_type
        if tensor.elem_type:
            value.dtype = ir.DataType(tensor.elem_type)
        if tensor.HasField("shape"):
            value.shape = ir.Shape(
                [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in tensor.shape.dim
                ]
            )
