"""Drives an export: scans for unsupported ops, converts node by node, collects every failure."""

from __future__ import annotations

import functools

import onnx_ir as ir

from unframe.backends.caffe2.context import (
    FRAMEWORK,
    Converter,
    ExportContext,
    ExportedNets,
    inferred_value_types,
)
from unframe.backends.caffe2.native import CAFFE2_DTYPES
from unframe.backends.caffe2.registry import ops
from unframe.shared_ir.errors import (
    ConversionError,
    UnframeError,
    UnsupportedError,
    UnsupportedOp,
    UnsupportedOpsError,
    unexpected_error,
)
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules

#: ONNX elem_type numbers for value_info.json (the model zoo's convention).
_ONNX_ELEM = {dtype: int(dtype) for dtype in ir.DataType}


def export_registry() -> OpRegistry[Converter]:
    """The export registry with every converter module loaded."""
    load_op_modules("unframe.backends.caffe2.ops")
    return ops


def export_model(model: ir.Model, *, detach_weights: bool = False) -> ExportedNets:
    """Converts ``model`` to Caffe2's predict and init nets.

    Every node is converted even after one fails, so that one ``UnsupportedOpsError`` lists them
    all.

    Args:
        model: the model; its main graph must hold standard ONNX ops only.
        detach_weights: leave large weights out of the init net's messages, in ``init_values``
            (for ``write_model``, which writes them from there): protobuf then never copies them.

    Raises:
        UnsupportedOpsError: ops without a converter, or that Caffe2 cannot express as given.
    """
    registry = export_registry()
    missing = registry.unsupported_nodes(model)
    if missing:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK)
    ctx, failures = _convert(model, registry, detach_weights=detach_weights)
    if failures:
        raise UnsupportedOpsError(failures, framework=FRAMEWORK)
    return ExportedNets(ctx.predict, ctx.init, _value_info(model, ctx), ctx.init_values)


def unsupported(model: ir.Model) -> list[UnsupportedOp]:
    """Every node the backend cannot export: missing converters, then failing conversions."""
    registry = export_registry()
    missing = registry.unsupported_nodes(model)
    if missing:
        return missing
    # A dry run: its weights, never written, stay out of protobuf.
    _, failures = _convert(model, registry, detach_weights=True)
    return failures


def _convert(
    model: ir.Model, registry: OpRegistry[Converter], *, detach_weights: bool
) -> tuple[ExportContext, list[UnsupportedOp]]:
    ctx = ExportContext(model, inferred_value_types(model), detach_weights=detach_weights)
    ctx.convert_graph = functools.partial(_convert_subgraph, registry=registry)
    graph = model.graph
    failures: list[UnsupportedOp] = []
    for value in graph.inputs:
        if value.const_value is None:
            ctx.predict.external_input.append(ctx.blob(value))
            reason = _not_a_caffe2_tensor(value)
            if reason:
                failures.append(UnsupportedOp(value.name or "", "graph input", reason=reason))
                ctx.failed_nodes.append(None)
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
    """Writes ``graph``'s initializers into the init net and its nodes into ``ctx.predict``."""
    failures: list[UnsupportedOp] = []
    for value in graph.initializers.values():
        if value.const_value is None:
            continue
        try:
            ctx.constant(value.const_value.numpy(), name=ctx.blob(value))
        except ConversionError as error:
            failures.append(UnsupportedOp(value.name or "", "initializer", reason=error.message))
            ctx.failed_nodes.append(None)
    model = ctx.model
    for node in graph:
        ctx.node = node
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        opset = int(model.opset_imports.get(domain, ctx.opset))
        converter = registry.lookup(node.op_type, opset, domain)
        try:
            if converter is None:
                raise ctx.error("no converter")
            for port in [*node.inputs, *node.outputs]:
                reason = _not_a_caffe2_tensor(port) if port is not None else None
                if reason:
                    raise ctx.error(reason)
            converter(node, ctx)
        except UnsupportedError as error:
            failures.append(_failure(node, opset, error.message))
            ctx.failed_nodes.append(node)
        except UnframeError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug (exit 5) or no memory (6), located
            raise unexpected_error(
                error,
                "the caffe2 export converter",
                framework=FRAMEWORK,
                node=node.name or "",
                op_type=node.op_type,
                domain=node.domain or None,
                opset=opset,
            ) from error
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


def _not_a_caffe2_tensor(value: ir.Value) -> str | None:
    """Why ``value`` cannot be a Caffe2 blob (sequences, optionals, types Caffe2 lacks)."""
    if value.type is not None and not isinstance(value.type, ir.TensorType):
        return f"{value.name!r} is a {type(value.type).__name__}; Caffe2 blobs are tensors"
    if value.dtype is not None and value.dtype not in CAFFE2_DTYPES:
        return f"{value.name!r} is {value.dtype.name}, an element type Caffe2 does not have"
    return None


def _failure(node: ir.Node, opset: int, reason: str) -> UnsupportedOp:
    return UnsupportedOp(node.name or "", node.op_type, node.domain, opset, reason)


def _value_info(model: ir.Model, ctx: ExportContext) -> dict[str, tuple[int, list[int]]]:
    info: dict[str, tuple[int, list[int]]] = {}
    for value in model.graph.inputs:
        if value.const_value is not None:
            continue
        dtype = ctx.dtype(value) or ir.DataType.FLOAT
        dims = [d if isinstance(d, int) else -1 for d in (value.shape or [])]
        info[ctx.blob(value)] = (_ONNX_ELEM.get(dtype, 1), dims)
    return info
