"""A frozen TensorFlow graph -> the IR, through tf2onnx; nothing it left unconverted gets through.

tf2onnx (``process_tf_graph``) logs each TF op it has no handler for, and each handler that raised,
and returns a graph that still holds those TF ops. We keep its log, scan its graph (every node an
op that ONNX's schemas know, in a domain we read), run onnx's full checker, and refuse the model
listing every such node at once; our own handlers (``handlers.py``) cover what Keras 3 emits and
tf2onnx lacks. Graph inputs and outputs get their signature names back, in signature order, and
their dynamic dims names that say what they are (``dim_names.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from unframe.frontends.tensorflow.dim_names import name_dynamic_dims
from unframe.frontends.tensorflow.freezing import HeldWeight
from unframe.frontends.tensorflow.handlers import register_handlers
from unframe.frontends.tensorflow.quiet import (
    captured_tf2onnx_log,
    import_tensorflow,
    quiet_tensorflow,
)
from unframe.shared_ir.errors import UnsupportedError, UnsupportedOp, UnsupportedOpsError

FRAMEWORK = "tensorflow"

#: The newest opset tf2onnx 1.17 writes (its OPSET_TO_IR_VERSION table ends there).
MAX_OPSET = 18
DEFAULT_OPSET = 18

#: Domains whose ops we accept from tf2onnx: ONNX's own (``onnx.defs`` versions them).
ACCEPTED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")

logger = logging.getLogger(__name__)

#: Metadata key naming what read the model (SavedModel signature, Keras 3, tf_keras, GraphDef).
SOURCE_KEY = "unframe.tensorflow.source"


@dataclass
class FrozenGraph:
    """A TF graph with its variables as constants, and what its inputs and outputs are called.

    ``inputs``/``outputs`` are tensor names in the graph (``x:0``), in the order the IR keeps;
    ``input_names``/``output_names`` the names the IR gives them (signature keys, Keras names).
    """

    graph_def: Any
    inputs: list[str]
    outputs: list[str]
    input_names: list[str]
    output_names: list[str]
    source: str
    shape_override: dict[str, list[int | None]] = field(default_factory=dict)
    #: Weights frozen as Placeholders (``freezing.py``): graph inputs to tf2onnx, initializers
    #: of the IR.
    held: list[HeldWeight] = field(default_factory=list)


def to_ir(frozen: FrozenGraph, *, opset: int | None, path: str | None) -> ir.Model:
    """Converts a frozen graph with tf2onnx and checks every node of what comes back.

    Raises:
        UnsupportedOpsError: tf2onnx left TF ops in the graph or a handler of its failed; every
            such node is listed with its name and op type.
        UnsupportedError: the requested opset is newer than tf2onnx writes, or tf2onnx's model
            fails onnx's checker.
    """
    target = DEFAULT_OPSET if opset is None else opset
    if target > MAX_OPSET:
        raise UnsupportedError(
            f"tf2onnx writes ONNX opsets up to {MAX_OPSET}, not {target}",
            path=path,
            framework=FRAMEWORK,
            hint=f"import at opset {MAX_OPSET} (leave --opset out) and convert the ONNX model on",
        )
    register_handlers()
    try:
        proto, failed = _tf2onnx(frozen, target, path, careful=False)
    except (UnsupportedError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - an optimizer of tf2onnx failed: redo with care
        logger.debug("tf2onnx's optimizers failed (%s); converting again, each on a copy", error)
        proto, failed = _tf2onnx(frozen, target, path, careful=True)
    unconverted = unconverted_nodes(proto, target, failed)
    if unconverted:
        raise UnsupportedOpsError(unconverted, framework=FRAMEWORK, direction="import", path=path)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise UnsupportedError(
            f"tf2onnx wrote a model that onnx's checker refuses: {first_line(error)}",
            path=path,
            framework=FRAMEWORK,
            hint="rerun with --debug for tf2onnx's log; unframe never passes such a model on",
        ) from None
    model = ir.from_proto(proto)
    _hold_weights_as_initializers(model, frozen.held)
    _keep_io_order(model, frozen)
    name_dynamic_dims(model)
    model.metadata_props[SOURCE_KEY] = frozen.source
    return model


def _tf2onnx(
    frozen: FrozenGraph, target: int, path: str | None, *, careful: bool
) -> tuple[onnx.ModelProto, list[UnsupportedOp]]:
    """tf2onnx's conversion and optimizers; the model and the nodes whose handler failed.

    ``careful=False`` runs the optimizers in place. ``careful=True`` is tf2onnx's own default: each
    optimizer runs on a deep copy of the whole graph, weights included, kept or dropped by
    whether it raised, which made the peak of a Dense stack about 40x its weights.
    """
    tf = import_tensorflow()
    from tf2onnx import optimizer, tfonnx

    rename = dict(zip(frozen.inputs, frozen.input_names, strict=True))
    rename |= dict(zip(frozen.outputs, frozen.output_names, strict=True))
    rename |= {weight.tensor: weight.name for weight in frozen.held}
    tf_ops = {node.name: node.op for node in frozen.graph_def.node}
    with captured_tf2onnx_log() as records, quiet_tensorflow():
        try:
            with tf.Graph().as_default() as graph:
                tf.import_graph_def(frozen.graph_def, name="")
                onnx_graph = tfonnx.process_tf_graph(
                    graph,
                    continue_on_error=True,
                    opset=target,
                    input_names=list(frozen.inputs) + [w.tensor for w in frozen.held],
                    output_names=list(frozen.outputs),
                    shape_override=frozen.shape_override or None,
                    tensors_to_rename=rename,
                )
        except Exception as error:  # noqa: BLE001 - tf2onnx's own failure, said as such
            if isinstance(error, MemoryError):
                raise
            raise UnsupportedError(
                f"tf2onnx could not convert the graph: {type(error).__name__}: {first_line(error)}",
                path=path,
                framework=FRAMEWORK,
                hint="rerun with --debug for tf2onnx's log",
            ) from None
        failed = failed_handlers(records, tf_ops, target)
        with _fresh_node_protos():
            onnx_graph = optimizer.optimize_graph(onnx_graph, catch_errors=careful)
        proto = onnx_graph.make_model(f"converted from {frozen.source}")
    return proto, failed


@contextlib.contextmanager
def _fresh_node_protos() -> Iterator[None]:
    """tf2onnx's ``Node.update_proto``, writing a new NodeProto instead of editing the old one.

    Every optimizer ends with ``update_proto`` on every node, which clears the node's attributes
    and extends them again: under protobuf's upb runtime the cleared ones (weights included) stay
    in the node's arena, so each of the ~30 optimizer runs kept one more copy of every weight
    (a Dense stack peaked at ~40x its weights). A fresh NodeProto drops the old arena with it.
    """
    from tf2onnx.graph import Node

    original = Node.update_proto

    def update_proto(self: Any, external_tensor_storage: Any = None) -> None:
        old = self._op
        fresh = onnx.NodeProto(
            name=old.name, op_type=old.op_type, domain=old.domain, doc_string=old.doc_string
        )
        fresh.input.extend(self.input)
        fresh.output.extend(self.output)
        for attr_name, sub_graph in (self.get_body_graphs() or {}).items():
            graph_proto = sub_graph.make_graph(
                f"graph for {self.name} {attr_name}",
                external_tensor_storage=external_tensor_storage,
            )
            self.set_attr(attr_name, graph_proto)
        fresh.attribute.extend(self.get_onnx_attrs(external_tensor_storage).values())
        self._op = fresh

    Node.update_proto = update_proto
    try:
        yield
    finally:
        Node.update_proto = original


def failed_handlers(
    records: Sequence[logging.LogRecord], tf_ops: dict[str, str], opset: int
) -> list[UnsupportedOp]:
    """The nodes whose tf2onnx handler raised: their node may now look like an ONNX op."""
    failed = []
    for record in records:
        if not str(record.msg).startswith("Failed to convert node") or not record.args:
            continue
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        name = str(args[0])
        error = record.exc_info[1] if record.exc_info else None
        reason = "tf2onnx's converter failed"
        if error is not None:
            reason += f": {type(error).__name__}: {first_line(error)}"
        failed.append(UnsupportedOp(name, tf_ops.get(name, "?"), opset=None, reason=reason))
    return failed


def unconverted_nodes(
    proto: onnx.ModelProto, opset: int, failed: list[UnsupportedOp]
) -> list[UnsupportedOp]:
    """Every node (subgraphs too) that is not an ONNX op, plus every failed handler's node."""
    found = {op.node: op for op in failed}
    for node in _all_nodes(proto.graph):
        if node.name in found:
            continue
        if node.domain not in ACCEPTED_DOMAINS:
            reason = f"tf2onnx wrote an op of domain {node.domain!r}, which unframe does not read"
        elif not onnx.defs.has(node.op_type, node.domain):
            reason = "tf2onnx has no converter for this TensorFlow op and left it in the graph"
        else:
            continue
        found[node.name] = UnsupportedOp(node.name, node.op_type, node.domain, None, reason)
    return list(found.values())


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                nodes.extend(_all_nodes(attribute.g))
            for subgraph in attribute.graphs:
                nodes.extend(_all_nodes(subgraph))
    return nodes


def _hold_weights_as_initializers(model: ir.Model, held: Sequence[HeldWeight]) -> None:
    """The held weights, graph inputs of tf2onnx's model, become initializers holding the
    variables' arrays; a Transpose tf2onnx put on one (a Conv kernel from HWIO to OIHW) is
    folded into it, as tf2onnx folds it on a constant."""
    if not held:
        return
    graph = model.graph
    by_name = {value.name: value for value in graph.inputs}
    for weight in held:
        value = by_name.get(weight.name)
        if value is None:
            continue  # nothing read it: tf2onnx dropped it
        graph.inputs.remove(value)
        value.const_value = ir.Tensor(weight.array(), name=weight.name)
        graph.register_initializer(value)
    held_names = {weight.name for weight in held}
    outputs = set(graph.outputs)
    for node in list(graph):
        source = node.inputs[0] if node.op_type == "Transpose" and node.inputs else None
        if source is None or source.name not in held_names or source.const_value is None:
            continue
        result = node.outputs[0]
        if result in outputs:
            continue
        perm = node.attributes.get_ints("perm")
        array = source.const_value.numpy()
        folded = ir.Value(
            name=f"{result.name}__folded",
            shape=result.shape,
            type=result.type,
            const_value=ir.Tensor(np.transpose(array, perm), name=result.name),
        )
        result.replace_all_uses_with(folded)
        graph.remove(node, safe=True)
        folded.name = result.name
        graph.register_initializer(folded)
        held_names.add(folded.name or "")
        if not source.uses():
            graph.initializers.pop(source.name or "")


def _keep_io_order(model: ir.Model, frozen: FrozenGraph) -> None:
    """Puts the graph's inputs and outputs in signature order (tf2onnx keeps it; this checks)."""
    for values, names in (
        (model.graph.inputs, frozen.input_names),
        (model.graph.outputs, frozen.output_names),
    ):
        by_name = {value.name: value for value in values}
        if list(by_name) == names or set(by_name) != set(names):
            continue
        ordered = [by_name[name] for name in names]
        values.clear()
        values.extend(ordered)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
