"""Drives an export with the shared conversion loop: scan, convert node by node, raise once."""

from __future__ import annotations

import functools

import onnx_ir as ir

from unframe.backends.caffe2.context import FRAMEWORK, Converter, ExportContext, ExportedNets
from unframe.backends.caffe2.native import CAFFE2_DTYPES
from unframe.backends.caffe2.registry import ops
from unframe.shared_ir.conversion import onnx_loop, onnx_node_info
from unframe.shared_ir.errors import ConversionError, UnsupportedOp, UnsupportedOpsError
from unframe.shared_ir.folding import FoldConstantsPass
from unframe.shared_ir.function_expansion import expand_functions, unsupported_after_expansion
from unframe.shared_ir.op_registry import OpRegistry, iter_nodes, load_op_modules
from unframe.shared_ir.passes import infer_shapes

#: ONNX elem_type numbers for value_info.json (the model zoo's convention).
_ONNX_ELEM = {dtype: int(dtype) for dtype in ir.DataType}


def export_registry() -> OpRegistry[Converter]:
    """The export registry with every converter module loaded."""
    load_op_modules("unframe.backends.caffe2.ops")
    return ops


def export_model(model: ir.Model, *, detach_weights: bool = False) -> ExportedNets:
    """Converts ``model`` to Caffe2's predict and init nets.

    The shared conversion loop (``shared_ir.conversion``) scans every node first, then converts
    them in order; every refused node (an attribute, a run-time value or an element type Caffe2
    cannot express) is collected, and one ``UnsupportedOpsError`` lists them all before anything
    is written.

    Args:
        model: the model; its main graph must hold standard ONNX ops only. It is changed in
            place: shapes are inferred and constants folded.
        detach_weights: leave large weights out of the init net's messages, in ``init_values``
            (for ``write_model``, which writes them from there): protobuf then never copies them.

    Raises:
        UnsupportedOpsError: ops without a converter, or that Caffe2 cannot express as given.
    """
    registry = export_registry()
    # Function ops without a converter become their ONNX function bodies first.
    expand_functions(model, registry)
    missing = registry.unsupported_nodes(model)
    if missing:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK)
    ctx, failures = _convert(model, registry, detach_weights=detach_weights)
    if failures:
        raise UnsupportedOpsError(failures, framework=FRAMEWORK)
    return ExportedNets(ctx.predict, ctx.init, _value_info(model, ctx), ctx.init_values)


def unsupported(model: ir.Model) -> list[UnsupportedOp]:
    """What a scan finds before converting: nodes without a converter, and graph inputs and node
    inputs or outputs whose type Caffe2 cannot hold (subgraphs included).

    Refusals that only converting finds (an attribute, a value computed at run time) are raised
    by ``export_model``, all at once, before anything is written.
    """
    registry = export_registry()
    missing = unsupported_after_expansion(model, registry)
    refused = {
        id(node) for node in iter_nodes(model.graph) if not _has_converter(node, registry, model)
    }
    found = list(missing)
    for value in model.graph.inputs:
        reason = _not_a_caffe2_tensor(value) if value.const_value is None else None
        if reason:
            found.append(UnsupportedOp(value.name or "", "graph input", reason=reason))
    imports = dict(model.opset_imports)
    for node in iter_nodes(model.graph):
        if id(node) in refused:
            continue
        reason = _port_type_problem(node)
        if reason:
            info = onnx_node_info(node, imports)
            found.append(UnsupportedOp(info.name, info.op_type, info.domain, info.opset, reason))
    return found


def _has_converter(node: ir.Node, registry: OpRegistry[Converter], model: ir.Model) -> bool:
    info = onnx_node_info(node, dict(model.opset_imports))
    return info.opset is not None and registry.supports(node.op_type, info.opset, info.domain)


def _convert(
    model: ir.Model, registry: OpRegistry[Converter], *, detach_weights: bool
) -> tuple[ExportContext, list[UnsupportedOp]]:
    # Shapes first (data propagation finds Shape values of computed shapes), then the shared
    # folding pass, run here too because conversions without the pipeline (--no-optimize,
    # conformance) reach the backend unfolded; converters read what it computes as const_value.
    infer_shapes(model, data_prop=True)
    FoldConstantsPass()(model)
    ctx = ExportContext(model, detach_weights=detach_weights)
    ctx.convert_graph = functools.partial(_convert_subgraph, registry=registry)
    graph = model.graph
    failures: list[UnsupportedOp] = []
    for value in graph.inputs:
        if value.const_value is None:
            ctx.predict.external_input.append(ctx.blob(value))
            reason = _not_a_caffe2_tensor(value)
            if reason:
                failures.append(UnsupportedOp(value.name or "", "graph input", reason=reason))
    failures.extend(_convert_nodes(graph, ctx, registry))
    ctx.node = None
    for value in graph.outputs:
        ctx.predict.external_output.append(ctx.blob(value))
    if not ctx.predict.op:
        # Every output is an input or a weight: a net still needs an operator to be one.
        for blob in ctx.predict.external_output:
            ctx.emit("Copy", [blob], [blob])
    return ctx, failures


def _convert_nodes(
    graph: ir.Graph, ctx: ExportContext, registry: OpRegistry[Converter]
) -> list[UnsupportedOp]:
    """Writes ``graph``'s initializers into the init net and its nodes into ``ctx.predict``,
    node by node with the shared conversion loop; returns the refusals."""
    failures: list[UnsupportedOp] = []
    for value in graph.initializers.values():
        if value.const_value is None:
            continue
        try:
            ctx.make_constant(value.const_value.numpy(), name=ctx.blob(value))
        except ConversionError as error:
            failures.append(UnsupportedOp(value.name or "", "initializer", reason=error.message))
    model = ctx.model
    loop = onnx_loop(FRAMEWORK, "export", dict(model.opset_imports))

    def convert(node: ir.Node) -> None:
        ctx.node = node
        info = loop.describe(node)
        converter = registry.lookup(node.op_type, info.opset or ctx.opset, info.domain)
        if converter is None:
            raise ctx.error("no converter")
        reason = _port_type_problem(node)
        if reason:
            raise ctx.error(reason)
        converter(node, ctx)

    failures.extend(loop.run(graph, convert))
    return failures


def _convert_subgraph(
    graph: ir.Graph, ctx: ExportContext, *, registry: OpRegistry[Converter]
) -> list[str]:
    """The node loop for a subnet's context; each failure as one line naming its node."""
    failures = _convert_nodes(graph, ctx, registry)
    ctx.node = None
    return [
        f"{failure.node or '?'!r} ({failure.qualified_type}): {failure.reason}"
        for failure in failures
    ]


def _port_type_problem(node: ir.Node) -> str | None:
    """Why one of ``node``'s inputs or outputs cannot be a Caffe2 blob, if one cannot."""
    for port in [*node.inputs, *node.outputs]:
        reason = _not_a_caffe2_tensor(port) if port is not None else None
        if reason:
            return reason
    return None


def _not_a_caffe2_tensor(value: ir.Value) -> str | None:
    """Why ``value`` cannot be a Caffe2 blob (sequences, optionals, types Caffe2 lacks)."""
    if value.type is not None and not isinstance(value.type, ir.TensorType):
        return f"{value.name!r} is a {type(value.type).__name__}; Caffe2 blobs are tensors"
    if value.dtype is not None and value.dtype not in CAFFE2_DTYPES:
        return f"{value.name!r} is {value.dtype.name}, an element type Caffe2 does not have"
    return None


def _value_info(model: ir.Model, ctx: ExportContext) -> dict[str, tuple[int, list[int]]]:
    info: dict[str, tuple[int, list[int]]] = {}
    for value in model.graph.inputs:
        if value.const_value is not None:
            continue
        dtype = ctx.dtype(value) or ir.DataType.FLOAT
        dims = [d if isinstance(d, int) else -1 for d in (value.shape or [])]
        info[ctx.blob(value)] = (_ONNX_ELEM.get(dtype, 1), dims)
    return info
