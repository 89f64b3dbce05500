"""The one constant-folding pass: shape arithmetic and small constants, computed once.

Every backend needs the values of shape computations (``Shape`` of a statically shaped value,
then ``Gather``, ``Concat``, arithmetic, ``Reshape`` targets...) to choose what to emit. This pass
computes them once, before any backend, with one op set (:data:`FOLDABLE_OPS`) and one size limit
(:data:`FOLD_SIZE_LIMIT`); afterwards a converter reads ``value.const_value``.

One sweep in graph order touches each node once, so the pass is linear in the graph's size.
Values are computed by ONNX's reference implementation of each op (``onnx.reference``), which
defines what the op means. Shape inference run before the pass cannot see the values it computes,
so a node downstream of a folded value whose output shapes are not all static gets ONNX's
per-node inference, fed those values: a ``Shape`` further on can then fold too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

logger = logging.getLogger(__name__)

#: Ops of the default domain folded when their inputs are known: shape arithmetic and the
#: small-tensor arithmetic around it. Generators (ConstantOfShape, Range, Expand, Tile) are
#: folded only where their output's size, known before running them, is within the limit.
FOLDABLE_OPS = frozenset({
    "Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Concat", "ConstantOfShape", "Div",
    "Equal", "Expand", "Flatten", "Floor", "Gather", "Greater", "GreaterOrEqual", "Identity",
    "Less", "LessOrEqual", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Range",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSum", "Reshape", "Shape", "Sign", "Size",
    "Slice", "Sqrt", "Squeeze", "Sub", "Sum", "Tile", "Transpose", "Unsqueeze", "Where",
})  # fmt: skip

#: The most elements any input or output of a folded node may hold: folding is for shape and
#: index tensors; weights and activations are left to the backend's runtime.
FOLD_SIZE_LIMIT = 4096

#: Element types folded: those onnx.reference and numpy compute natively (no float8/int4 packing).
_FOLDABLE_DTYPES = frozenset({
    ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16, ir.DataType.INT8,
    ir.DataType.INT16, ir.DataType.INT32, ir.DataType.INT64, ir.DataType.UINT8,
    ir.DataType.UINT16, ir.DataType.UINT32, ir.DataType.UINT64, ir.DataType.BOOL,
})  # fmt: skip

#: Ops whose inputs broadcast together (numpy rules): the output's size is the broadcast's.
_BROADCASTING = frozenset({
    "Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max",
    "Min", "Mod", "Mul", "Or", "Pow", "Sub", "Sum", "Where",
})  # fmt: skip


class FoldConstantsPass(ir.passes.InPlacePass):
    """Folds :data:`FOLDABLE_OPS` nodes whose inputs are known, within :data:`FOLD_SIZE_LIMIT`.

    In the main graph a folded node is replaced by an initializer of the same name; a node whose
    output is a graph output, or that lies in a subgraph, stays, with its outputs' ``const_value``
    set. Graph inputs are never treated as constants (an initializer that is also a graph input
    is a default the caller may override), and graph inputs and outputs keep their names.

    Attributes:
        visited: nodes looked at by the last run (each node once: the pass is linear).
        folded: nodes whose outputs the last run computed.
    """

    def __init__(self, size_limit: int = FOLD_SIZE_LIMIT) -> None:
        super().__init__()
        self.size_limit = size_limit
        self.visited = 0
        self.folded = 0
        #: Values whose data or shape this run found: nodes reading them are inferred again.
        self._learned: set[ir.Value] = set()

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.visited = 0
        self.folded = 0
        self._learned = set()
        opsets = dict(model.opset_imports)
        self._fold_graph(model.graph, opsets.get("", opsets.get("ai.onnx", 1)), main=True)
        if self.folded:
            logger.debug("folded %d of %d nodes", self.folded, self.visited)
        return ir.passes.PassResult(model, modified=self.folded > 0)

    def _fold_graph(self, graph: ir.Graph, opset: int, *, main: bool) -> None:
        for node in list(graph):
            self.visited += 1
            for attr in node.attributes.values():
                if isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPH:
                    self._fold_graph(attr.as_graph(), opset, main=False)
                elif isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPHS:
                    for subgraph in attr.as_graphs():
                        self._fold_graph(subgraph, opset, main=False)
            if node.domain not in ("", "ai.onnx"):
                continue
            if node.op_type == "Constant":
                _annotate_constant(node)
                continue
            results = None
            if node.op_type in FOLDABLE_OPS:
                try:
                    results = self._evaluate(node, opset)
                except Exception as error:  # noqa: BLE001 - what is not folded runs in the backend
                    logger.debug("not folding %s (%s): %s", node.name, node.op_type, error)
            if results is None:
                if any(v in self._learned for v in node.inputs if v is not None):
                    self._learn_shapes(node, opset)
                continue
            self.folded += 1
            self._replace(graph, node, results, main=main)

    def _evaluate(self, node: ir.Node, opset: int) -> list[np.ndarray] | None:
        if node.op_type in ("Shape", "Size"):
            return _shape_or_size(node)
        arrays: list[np.ndarray | None] = []
        for value in node.inputs:
            if value is None:
                arrays.append(None)
                continue
            tensor = value.const_value
            if (
                tensor is None
                or value.is_graph_input()
                or tensor.dtype not in _FOLDABLE_DTYPES
                or tensor.size > self.size_limit
            ):
                return None
            arrays.append(np.asarray(tensor.numpy()))
        if not arrays or any(a is None for a in arrays[:1]):
            return None
        predicted = _predicted_size(node, arrays)
        if predicted is not None and predicted > self.size_limit:
            return None
        while arrays and arrays[-1] is None:
            arrays.pop()
        # Here, not at the top: onnx.reference is a tenth of a second, and most graphs fold nothing.
        import onnx.reference.ops

        op = onnx.reference.ops.load_op("", node.op_type, opset)
        outputs = op.eval(*arrays, n_outputs=len(node.outputs), **_attributes(node))
        results = [
            np.asarray(r) for r in (outputs if isinstance(outputs, list | tuple) else [outputs])
        ]
        if len(results) != len(node.outputs) or any(r.size > self.size_limit for r in results):
            return None
        return results

    def _replace(
        self, graph: ir.Graph, node: ir.Node, results: Sequence[np.ndarray], *, main: bool
    ) -> None:
        outputs = list(node.outputs)
        for value, array in zip(outputs, results, strict=True):
            value.const_value = ir.tensor(array, name=value.name)
            value.shape = ir.Shape(array.shape)
            value.dtype = ir.DataType.from_numpy(array.dtype)
            self._learned.add(value)
        if not main or any(
            v.is_graph_output() or not v.name or v.name in graph.initializers for v in outputs
        ):
            return
        for value in outputs:
            name = value.name
            assert name is not None
            # The initializer takes the name: the node's output is renamed before it goes.
            value.name = f"{name}__folded"
            initializer = ir.Value(
                name=name, shape=value.shape, type=value.type, const_value=value.const_value
            )
            value.replace_all_uses_with(initializer)
            graph.register_initializer(initializer)
            self._learned.add(initializer)
        graph.remove(node, safe=True)

    def _learn_shapes(self, node: ir.Node, opset: int) -> None:
        """Static output shapes from ONNX's inference of ``node`` alone, fed the known values."""
        if all(v.shape is not None and v.shape.is_static() for v in node.outputs) or any(
            isinstance(a, ir.Attr) and a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
            for a in node.attributes.values()
        ):
            return
        types: dict[str, onnx.TypeProto] = {}
        data: dict[str, onnx.TensorProto] = {}
        for value in node.inputs:
            if value is None or not value.name or value.dtype is None:
                continue
            dims = None if value.shape is None else [_dim(d) for d in value.shape]
            types[value.name] = onnx.helper.make_tensor_type_proto(int(value.dtype), dims)
            tensor = value.const_value
            if tensor is not None and not value.is_graph_input() and tensor.size <= self.size_limit:
                data[value.name] = ir.serde.serialize_tensor(tensor)
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
            inferred = onnx.shape_inference.infer_node_outputs(
                schema,
                ir.serde.serialize_node(node),
                types,
                data,
                None,
                [onnx.helper.make_opsetid("", opset)],
            )
        except Exception as error:  # noqa: BLE001 - no inference leaves the shapes as they are
            logger.debug("no shapes for %s (%s): %s", node.name, node.op_type, error)
            return
        for value in node.outputs:
            found = inferred.get(value.name or "")
            if found is None or not found.tensor_type.HasField("shape"):
                continue
            dims = found.tensor_type.shape.dim
            if not all(d.HasField("dim_value") for d in dims):
                continue
            if value.shape is None or not value.shape.is_static():
                value.shape = ir.Shape([int(d.dim_value) for d in dims])
                self._learned.add(value)
            if value.dtype is None and found.tensor_type.elem_type:
                value.dtype = ir.DataType(found.tensor_type.elem_type)


def _dim(dim: int | ir.SymbolicDim) -> int | str | None:
    return dim if isinstance(dim, int) else dim.value


def _shape_or_size(node: ir.Node) -> list[np.ndarray] | None:
    source = node.inputs[0] if node.inputs else None
    if source is None or source.shape is None or not source.shape.is_static():
        return None
    dims = [int(d) for d in source.shape.numpy()]
    if node.op_type == "Size":
        return [np.array(math.prod(dims), dtype=np.int64)]
    start = _int_attribute(node, "start", 0)
    end = _int_attribute(node, "end", len(dims))
    return [np.array(dims[start:end], dtype=np.int64)]


def _predicted_size(node: ir.Node, arrays: Sequence[np.ndarray | None]) -> int | None:
    """The output's element count where it can exceed the inputs' (None: it cannot)."""
    op = node.op_type
    present = [a for a in arrays if a is not None]
    if op in _BROADCASTING:
        return math.prod(np.broadcast_shapes(*(a.shape for a in present)))
    if op == "ConstantOfShape":
        return math.prod(int(d) for d in present[0].reshape(-1))
    if op == "Expand":
        return math.prod(np.broadcast_shapes(present[0].shape, tuple(int(d) for d in present[1])))
    if op == "Tile":
        return math.prod(int(d) * int(r) for d, r in zip(present[0].shape, present[1], strict=True))
    if op == "Range":
        start, limit, delta = (float(a) for a in present)
        return max(math.ceil((limit - start) / delta), 0)
    if op == "Gather":
        data, indices = present[0], present[1]
        axis = _int_attribute(node, "axis", 0) % max(data.ndim, 1)
        return data.size // max(data.shape[axis], 1) * indices.size if data.ndim else None
    return None


def _attributes(node: ir.Node) -> dict[str, Any]:
    """The node's attributes as onnx.reference takes them (a tensor as a TensorProto)."""
    result: dict[str, Any] = {}
    for name, attr in node.attributes.items():
        if not isinstance(attr, ir.Attr):
            raise ValueError(f"attribute {name!r} refers to a function's attribute")
        if attr.type == ir.AttributeType.TENSOR:
            result[name] = ir.serde.serialize_tensor(attr.as_tensor())
        elif attr.type in (
            ir.AttributeType.INTS,
            ir.AttributeType.FLOATS,
            ir.AttributeType.STRINGS,
        ):
            result[name] = list(attr.value)
        elif attr.type in (ir.AttributeType.INT, ir.AttributeType.FLOAT, ir.AttributeType.STRING):
            result[name] = attr.value
        else:
            raise ValueError(f"attribute {name!r} of type {attr.type.name} is not folded")
    return result


def _int_attribute(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return default if not isinstance(attr, ir.Attr) else int(attr.as_int())


def _annotate_constant(node: ir.Node) -> None:
    """Sets a ``Constant`` node's output ``const_value`` so the nodes it feeds can fold."""
    if len(node.attributes) != 1 or len(node.outputs) != 1:
        return
    output = node.outputs[0]
    if output.const_value is not None:
        return
    ((key, attr),) = node.attributes.items()
    if not isinstance(attr, ir.Attr):
        return
    array: np.ndarray
    if key == "value":
        output.const_value = attr.as_tensor()
        return
    if key in ("value_float", "value_floats"):
        array = np.array(attr.value, dtype=np.float32)
    elif key in ("value_int", "value_ints"):
        array = np.array(attr.value, dtype=np.int64)
    else:
        return
    output.const_value = ir.tensor(array, name=output.name)


__all__ = ["FOLDABLE_OPS", "FOLD_SIZE_LIMIT", "FoldConstantsPass"]
