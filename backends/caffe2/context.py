"""State of one export: the two nets being built, blob names, constants and known shapes."""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnx_ir as ir

from unframe.backends.caffe2.native import (
    CAFFE2_DTYPES,
    EXACT_FILLS,
    FAST_MIN,
    Detached,
    caffe2_pb2,
    set_floats,
    set_ints,
)
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext
from unframe.shared_ir.errors import ConversionError
from unframe.shared_ir.passes import infer_shapes as shape_inference

FRAMEWORK = "caffe2"

ArgValue = int | float | str | bytes | Sequence[int] | Sequence[float] | Sequence[str]

Converter = Callable[[ir.Node, "ExportContext"], None]

#: Converts one graph's nodes into ``ctx.predict`` (the driver's node loop), failures returned.
GraphConverter = Callable[[ir.Graph, "ExportContext"], list[str]]


def caffe2_dtype(dtype: ir.DataType | None, what: str = "tensor") -> int:
    """The Caffe2 data type number of ``dtype``; ConversionError where Caffe2 has none."""
    if dtype is None or dtype not in CAFFE2_DTYPES:
        name = dtype.name if dtype is not None else "unknown"
        raise ConversionError(f"Caffe2 has no {name} element type (for {what})")
    return CAFFE2_DTYPES[dtype]


def make_arg(name: str, value: ArgValue) -> caffe2_pb2.Argument:
    """An Argument typed as Caffe2's schemas read it: i, f, s, ints, floats or strings."""
    arg = caffe2_pb2.Argument(name=name)
    if isinstance(value, bool | int | np.integer):
        arg.i = int(value)
    elif isinstance(value, float | np.floating):
        arg.f = float(value)
    elif isinstance(value, str):
        arg.s = value.encode()
    elif isinstance(value, bytes):
        arg.s = value
    else:
        items: list[Any] = list(value)
        if all(isinstance(v, bool | int | np.integer) for v in items):
            arg.ints.extend(int(v) for v in items)
        elif all(isinstance(v, str) for v in items):
            arg.strings.extend(str(v).encode() for v in items)
        else:
            arg.floats.extend(float(v) for v in items)
    return arg


@dataclass
class ExportedNets:
    """What the backend produces: Caffe2's two nets and the data inputs' value_info."""

    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef
    value_info: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    #: The init net's large value lists where it was built detached (then absent from it).
    init_values: Detached = field(default_factory=dict)


class ExportContext:
    """Builds the predict and init nets for one ``ir.Model``; converters call its methods."""

    def __init__(
        self,
        model: ir.Model,
        inferred: dict[str, ir.TypeAndShape] | None = None,
        *,
        detach_weights: bool = False,
    ) -> None:
        self.model = model
        #: Whether large weights stay out of the init net's messages, in ``init_values``.
        self.detach_weights = detach_weights
        self.init_values: Detached = {}
        self.opset = int(model.opset_imports.get("", model.opset_imports.get("ai.onnx", 18)))
        name = model.graph.name or "unframe"
        self.predict = caffe2_pb2.NetDef(name=name)
        self.init = caffe2_pb2.NetDef(name=f"{name}_init")
        #: The graph whose nodes go into ``predict`` (a subgraph's in a subnet's context).
        self.graph = model.graph
        #: The top-level predict net, which declares every weight (subnets' ones included).
        self.main_predict = self.predict
        #: The driver's node loop, which control-flow converters run on their subgraphs.
        self.convert_graph: GraphConverter | None = None
        self.inferred = inferred or {}
        self.node: ir.Node | None = None
        self._names: dict[ir.Value, str] = {}
        #: Blob names given to values; a subgraph value whose name a sibling graph already used
        #: gets a fresh one, so that every blob is written by one value (SSA across subnets).
        self._claimed: set[str] = set()
        self._taken: set[str] = set()
        self._consts: dict[ir.Value, np.ndarray] = {}
        self._shapes: dict[ir.Value, tuple[int, ...] | None] = {}
        self._folding_depth = 0
        self._counter = 0
        for value in _all_values(model.graph):
            if value.name:
                self._taken.add(value.name)

    # -- names --------------------------------------------------------------------------------
    def blob(self, value: ir.Value | None) -> str:
        """The blob that holds ``value``: its ONNX name, or a fresh one for unnamed values."""
        if value is None:
            raise self.error("a required input is missing")
        name = self._names.get(value)
        if name is None:
            if value.name and value.name not in self._claimed:
                name = value.name
            else:
                name = self.fresh(value.name or "v")
            self._claimed.add(name)
            self._names[value] = name
        return name

    def subnet(self, graph: ir.Graph, name: str) -> tuple[ExportContext, list[str]]:
        """Converts ``graph`` (an If branch, a Loop body) into a NetDef of its own.

        The subnet shares this export's blob names, constants and init net, so that it reads
        outer values under their outer blob names and its weights live in the init net.

        Returns:
            The subnet's context (its ``predict`` is the NetDef) and the failures inside it.
        """
        if self.convert_graph is None:
            raise self.error("subgraphs need the driver's node loop (ctx.convert_graph)")
        child = copy.copy(self)
        child.predict = caffe2_pb2.NetDef(name=name)
        child.graph = graph
        child.node = None
        failures = self.convert_graph(graph, child)
        return child, failures

    def fresh(self, hint: str) -> str:
        """A blob name no ONNX value and no earlier temporary uses."""
        base = hint
        if self.node is not None and self.node.name:
            base = f"{self.node.name}/{hint}"
        while True:
            self._counter += 1
            candidate = f"{base}__{self._counter}"
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate

    # -- the converter vocabulary every backend shares (shared_ir.conversion.ConverterContext) --
    def input(self, index: int) -> str:
        """The blob of the current node's input ``index`` (a located error if it is absent)."""
        node = self._current()
        return self.blob(node.inputs[index] if index < len(node.inputs) else None)

    def has_input(self, index: int) -> bool:
        node = self._current()
        return index < len(node.inputs) and node.inputs[index] is not None

    def constant_input(self, index: int) -> np.ndarray | None:
        """The value of the current node's input ``index`` where it is known before running."""
        node = self._current()
        return self.known_value(node.inputs[index]) if index < len(node.inputs) else None

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """The current node's attribute ``name`` (tensors as numpy), else ``default``, else the
        op schema's default; a located error where the attribute is required and absent."""
        node = self._current()
        attribute = node.attributes.get(name)
        if isinstance(attribute, ir.Attr):
            if attribute.type == ir.AttributeType.TENSOR:
                return attribute.as_tensor().numpy()
            return attribute.value
        if default is not SCHEMA_DEFAULT:
            return default
        try:
            schema = onnx.defs.get_schema(node.op_type, self.opset, node.domain or "")
        except onnx.defs.SchemaError:
            schema = None
        found = schema.attributes.get(name) if schema is not None else None
        if found is None or not found.default_value.name:
            raise self.error(f"needs attribute {name!r}")
        return onnx.helper.get_attribute_value(found.default_value)

    def output(self, node: ir.Node, index: int = 0) -> str:
        return self.blob(node.outputs[index])

    def _current(self) -> ir.Node:
        if self.node is None:
            raise self.error("no node is being converted")
        return self.node

    # -- ops ----------------------------------------------------------------------------------
    def emit(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        **args: ArgValue | None,
    ) -> caffe2_pb2.OperatorDef:
        """Appends a Caffe2 operator to the predict net; None-valued args are left out."""
        op = self.predict.op.add()
        op.type = op_type
        op.input.extend(inputs)
        op.output.extend(outputs)
        if self.node is not None and self.node.name:
            op.name = self.node.name
        for key, value in args.items():
            if value is not None:
                op.arg.append(make_arg(key, value))
        return op

    def temp(
        self, op_type: str, inputs: Sequence[str], hint: str = "", **args: ArgValue | None
    ) -> str:
        """Emits a one-output op into a fresh blob and returns the blob."""
        out = self.fresh(hint or op_type.lower())
        self.emit(op_type, inputs, [out], **args)
        return out

    def make_constant(self, array: np.ndarray, hint: str = "const", name: str | None = None) -> str:
        """Writes ``array`` as a typed GivenTensor*Fill into the init net; returns its blob."""
        array = np.asarray(array)
        dtype = ir.DataType.from_numpy(array.dtype)
        if dtype not in EXACT_FILLS:
            raise self.error(f"Caffe2 cannot hold a {dtype.name} constant")
        fill, fill_dtype = EXACT_FILLS[dtype]
        blob = name or self.fresh(hint)
        target = blob if fill_dtype == dtype else self.fresh(f"{hint}_fill")
        op = self.init.op.add()
        op.type = fill
        op.output.append(target)
        op.arg.append(make_arg("shape", [int(d) for d in array.shape]))
        flat = array.astype(fill_dtype.numpy(), copy=False).reshape(-1)
        # Filled in place: appending a finished Argument would copy every value once more.
        values = op.arg.add(name="values")
        if fill_dtype == ir.DataType.DOUBLE:
            _warn_if_rounded(flat, blob)
        floats = fill_dtype in (ir.DataType.FLOAT, ir.DataType.DOUBLE)
        if self.detach_weights and flat.size >= FAST_MIN:
            # Caffe2's Argument holds floats as float32 and ints as int64, whatever the fill.
            held = flat.astype("<f4" if floats else np.int64, copy=False)
            self.init_values[len(self.init.op) - 1, len(op.arg) - 1] = (
                "floats" if floats else "ints",
                held,
            )
        elif floats:
            set_floats(values, flat)
        else:
            set_ints(values, flat)
        if target != blob:
            cast = self.init.op.add()
            cast.type = "Cast"
            cast.input.append(target)
            cast.output.append(blob)
            cast.arg.append(make_arg("to", CAFFE2_DTYPES[dtype]))
        if blob not in self.main_predict.external_input:
            self.main_predict.external_input.append(blob)
        return blob

    def make_constant_output(self, array: np.ndarray, node: ir.Node, index: int = 0) -> None:
        """Writes a node output that is known before running.

        A graph output must be written by the predict net, so it gets a Copy of the filled blob.
        """
        value = node.outputs[index]
        if value in self.graph.outputs:
            self.emit("Copy", [self.make_constant(array, "const")], [self.blob(value)])
        else:
            self.make_constant(array, name=self.blob(value))

    def scalar(self, value: float | int | bool, like: ir.Value | ir.DataType | None) -> str:
        """A 0-d constant of ``like``'s element type."""
        dtype = like if isinstance(like, ir.DataType) else self.dtype(like)
        np_dtype = dtype.numpy() if dtype is not None else np.dtype(np.float32)
        return self.make_constant(np.array(value, dtype=np_dtype), "scalar")

    # -- what is known about values --------------------------------------------------------------
    def known_value(self, value: ir.Value | None) -> np.ndarray | None:
        """The value's data where it is known before running.

        Initializers and Constant nodes, and small shape computations on them (``Shape`` of a
        statically shaped value, then Gather, Concat, arithmetic...), folded here with
        ``onnx.reference`` so that converters see the shapes and axes they compute.
        """
        if value is None:
            return None
        if value in self._consts:
            return self._consts[value]
        array: np.ndarray | None = None
        if value.const_value is not None:
            array = np.asarray(value.const_value.numpy())
        else:
            producer = value.producer()
            if producer is not None and producer.domain in ("", "ai.onnx"):
                if producer.op_type == "Constant":
                    array = constant_node_value(producer)
                else:
                    array = self._fold(producer, value)
        if array is not None:
            self._consts[value] = array
        return array

    def _fold(self, node: ir.Node, value: ir.Value) -> np.ndarray | None:
        if node.op_type == "Shape":
            shape = self.shape(node.inputs[0])
            if shape is None:
                return None
            start = _int_attr(node, "start", 0)
            end = _int_attr(node, "end", len(shape))
            return np.array(shape[slice(start, end)], dtype=np.int64)
        if node.op_type == "Size":
            shape = self.shape(node.inputs[0])
            return None if shape is None else np.array(int(np.prod(shape)), dtype=np.int64)
        if node.op_type not in _EXPORT_FOLDABLE or self._folding_depth > 50:
            return None
        self._folding_depth += 1
        try:
            inputs = [self.known_value(v) if v is not None else None for v in node.inputs]
        finally:
            self._folding_depth -= 1
        if any(a is None for a, v in zip(inputs, node.inputs, strict=True) if v is not None):
            return None
        if any(a is not None and a.size > _FOLD_LIMIT for a in inputs):
            return None
        results = evaluate_node(node, inputs, self.opset)
        if results is None:
            return None
        for output, result in zip(node.outputs, results, strict=False):
            if output is not value and output is not None:
                self._consts[output] = result
        return results[list(node.outputs).index(value)]

    def note(
        self,
        value: ir.Value,
        *,
        shape: tuple[int, ...] | None = None,
        const: np.ndarray | None = None,
    ) -> None:
        """Records what a converter knows of ``value`` that ONNX's inference may not.

        An If's outputs, for one, have the shape its two branches agree on, and the value of the
        branch a constant condition picks.
        """
        if const is not None:
            self._consts[value] = const
            self._shapes[value] = tuple(const.shape)
        elif shape is not None:
            self._shapes[value] = tuple(shape)

    def known_ints(self, value: ir.Value | None) -> list[int] | None:
        array = self.known_value(value)
        return None if array is None else [int(v) for v in np.asarray(array).reshape(-1)]

    def shape(self, value: ir.Value | None) -> tuple[int, ...] | None:
        """The static shape of ``value``, or None where some dim is unknown."""
        if value is None:
            return None
        if value in self._shapes:
            return self._shapes[value]
        result = self._known_shape(value)
        if result is None and self._folding_depth <= 50:
            self._folding_depth += 1
            try:
                result = self._node_shape(value)
            finally:
                self._folding_depth -= 1
        self._shapes[value] = result
        return result

    def _known_shape(self, value: ir.Value) -> tuple[int, ...] | None:
        if value.const_value is not None:
            return tuple(value.const_value.shape.numpy())
        if value.shape is not None and _static(value.shape) is not None:
            return _static(value.shape)
        inferred = self.inferred.get(value.name or "")
        if inferred is not None and inferred.shape is not None and _static(inferred.shape):
            return _static(inferred.shape)
        producer = value.producer()
        if producer is not None and producer.op_type == "Constant":
            const = self.known_value(value)
            return None if const is None else tuple(const.shape)
        return None

    def _node_shape(self, value: ir.Value) -> tuple[int, ...] | None:
        """ONNX's per-node inference, fed the static shapes and folded values found here."""
        node = value.producer()
        if node is None or node.domain not in ("", "ai.onnx"):
            return None
        const = self.known_value(value) if node.op_type in _EXPORT_FOLDABLE else None
        if const is not None:
            return tuple(const.shape)
        types: dict[str, onnx.TypeProto] = {}
        data: dict[str, onnx.TensorProto] = {}
        for v in node.inputs:
            if v is None or not v.name:
                continue
            dtype = self.dtype(v)
            shape = self.shape(v)
            if dtype is None:
                return None
            types[v.name] = onnx.helper.make_tensor_type_proto(int(dtype), shape)
            folded = self.known_value(v)
            if folded is not None and folded.size <= _FOLD_LIMIT:
                data[v.name] = onnx.numpy_helper.from_array(np.asarray(folded), v.name)
        try:
            schema = onnx.defs.get_schema(node.op_type, self.opset, "")
            proto = ir.serde.serialize_node(node)
            opsets = [onnx.helper.make_opsetid("", self.opset)]
            out = onnx.shape_inference.infer_node_outputs(schema, proto, types, data, None, opsets)
        except Exception:  # noqa: BLE001 - no inference means "unknown", never an error
            return None
        type_proto = out.get(value.name or "")
        if type_proto is None or not type_proto.tensor_type.HasField("shape"):
            return None
        dims = type_proto.tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            return None
        return tuple(int(d.dim_value) for d in dims)

    def rank(self, value: ir.Value | None) -> int | None:
        if value is None:
            return None
        if value.shape is not None:
            return len(value.shape)
        inferred = self.inferred.get(value.name or "")
        if inferred is not None and inferred.shape is not None:
            return len(inferred.shape)
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def dtype(self, value: ir.Value | None) -> ir.DataType | None:
        if value is None:
            return None
        if value.dtype is not None:
            return value.dtype
        inferred = self.inferred.get(value.name or "")
        if inferred is not None and inferred.type is not None:
            return inferred.type.dtype
        const = self.known_value(value)
        return None if const is None else ir.DataType.from_numpy(const.dtype)

    def need_shape(self, value: ir.Value | None, why: str) -> tuple[int, ...]:
        shape = self.shape(value)
        if shape is None:
            raise self.error(f"needs the static shape of {value.name if value else '?'!r} {why}")
        return shape

    def need_rank(self, value: ir.Value | None, why: str = "") -> int:
        rank = self.rank(value)
        if rank is None:
            raise self.error(f"needs the rank of {value.name if value else '?'!r} {why}".strip())
        return rank

    def need_known_value(self, value: ir.Value | None, what: str) -> np.ndarray:
        array = self.known_value(value)
        if array is None:
            raise self.error(f"Caffe2 needs {what} as a constant (it is computed at run time here)")
        return array

    def error(self, message: str) -> ConversionError:
        node = self.node
        return ConversionError(
            message,
            framework=FRAMEWORK,
            node=(node.name or "") if node is not None else None,
            op_type=node.op_type if node is not None else None,
            opset=self.opset,
        )


#: Ops folded at export time when all their inputs are known (shape arithmetic, mostly).
_EXPORT_FOLDABLE = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Cast", "CastLike", "Concat", "Gather", "Slice",
    "Squeeze", "Unsqueeze", "Reshape", "Identity", "Equal", "Less", "Greater", "Where", "Not",
    "Max", "Min", "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "Range", "Expand",
    "ConstantOfShape", "Floor", "Ceil", "Sign", "Mod", "Tile", "Transpose", "Flatten", "Size",
    "Shape", "And", "Or", "Clip", "Sqrt",
})  # fmt: skip
#: Larger tensors are left for the runtime; folding is for small shape and index tensors.
_FOLD_LIMIT = 4096


def _int_attr(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return default if attr is None else int(attr.as_int())  # type: ignore[union-attr]


def evaluate_node(
    node: ir.Node, inputs: list[np.ndarray | None], opset: int, limit: int = _FOLD_LIMIT
) -> list[np.ndarray] | None:
    """Runs one node on known inputs with onnx.reference; None where that fails."""
    from onnx.reference import ReferenceEvaluator

    try:
        proto = ir.serde.serialize_node(node)
        names = [n if n else "" for n in proto.input]
        feeds = {n: a for n, a in zip(names, inputs, strict=True) if n and a is not None}
        graph = onnx.helper.make_graph(
            [proto], "fold",
            [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in proto.output if o],
        )  # fmt: skip
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # noqa: BLE001 - a fold that fails is left to the runtime
        return None
    arrays = [np.asarray(r) for r in results]
    if any(a.size > limit for a in arrays):
        return None
    return arrays


def constant_node_value(node: ir.Node) -> np.ndarray | None:
    """The data of an ONNX ``Constant`` node, whichever attribute holds it."""
    for key, attr in node.attributes.items():
        if not isinstance(attr, ir.Attr):
            return None
        if key == "value":
            return np.asarray(attr.as_tensor().numpy())
        if key == "value_float":
            return np.array(attr.as_float(), dtype=np.float32)
        if key == "value_floats":
            return np.array(list(attr.as_floats()), dtype=np.float32)
        if key == "value_int":
            return np.array(attr.as_int(), dtype=np.int64)
        if key == "value_ints":
            return np.array(list(attr.as_ints()), dtype=np.int64)
    return None


def _static(dims: Any) -> tuple[int, ...] | None:
    result = []
    for dim in dims:
        if not isinstance(dim, int):
            return None
        result.append(dim)
    return tuple(result)


def _all_values(graph: ir.Graph, nested: bool = True) -> list[ir.Value]:
    """Every value of ``graph`` and (``nested``) of its subgraphs (If branches, Loop bodies)."""
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    for node in graph:
        values.extend(v for v in node.outputs)
        if not nested:
            continue
        for attr in node.attributes.values():
            if isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPH:
                values.extend(_all_values(attr.as_graph()))
            elif isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPHS:
                for sub in attr.as_graphs():
                    values.extend(_all_values(sub))
    return values


def inferred_value_types(model: ir.Model) -> dict[str, ir.TypeAndShape]:
    """Shapes ONNX shape inference finds for the model's values (annotated in place)."""
    shape_inference(model, data_prop=True)
    values = _all_values(model.graph)
    # Sibling subgraphs may reuse a name for different values: such a name tells nothing,
    # except for the main graph's own value, which subgraphs cannot shadow.
    main = {id(v) for v in _all_values(model.graph, nested=False)}
    counts = Counter(value.name for value in values if id(value) not in main)
    return {
        value.name: ir.TypeAndShape(value.type, value.shape)
        for value in sorted(values, key=lambda v: id(v) in main)
        if value.name
        and (id(value) in main or counts[value.name] == 1)
        and (value.shape is not None or value.type is not None)
    }


def _warn_if_rounded(values: np.ndarray, blob: str) -> None:
    """Caffe2's ``Argument`` holds floats only, so a GivenTensorDoubleFill is float32-exact."""
    rounded = values.astype(np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        changed = ~((rounded == values) | (np.isnan(rounded) & np.isnan(values)))
    if changed.any():
        error = float(np.max(np.abs(rounded[changed] - values[changed])))
        warnings.warn(
            f"double constant {blob!r}: Caffe2 stores GivenTensorDoubleFill values as float32, "
            f"so {int(changed.sum())} of {values.size} values are rounded (max abs error {error:.3g})",
            stacklevel=2,
        )


if TYPE_CHECKING:

    def _speaks_the_converter_vocabulary(ctx: ExportContext) -> ConverterContext[str]:
        return ctx  # mypy checks that ExportContext implements the Protocol
