"""State of one export: the two nets being built, blob names, constants and known shapes."""

from __future__ import annotations

import copy
import warnings
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
from unframe.shared_ir.folding import FOLD_SIZE_LIMIT
from unframe.shared_ir.traversal import all_values

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

    def __init__(self, model: ir.Model, *, detach_weights: bool = False) -> None:
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
        self.node: ir.Node | None = None
        self._names: dict[ir.Value, str] = {}
        #: Blob names given to values; a subgraph value whose name a sibling graph already used
        #: gets a fresh one, so that every blob is written by one value (SSA across subnets).
        self._claimed: set[str] = set()
        self._taken: set[str] = set()
        self._consts: dict[ir.Value, np.ndarray] = {}
        self._shapes: dict[ir.Value, tuple[int, ...] | None] = {}
        #: How deep ``shape`` is in per-node inference of producers (a bound on recursion).
        self._inference_depth = 0
        self._counter = 0
        for value in all_values(model.graph):
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

        Initializers, Constant nodes and what :class:`~unframe.shared_ir.folding.FoldConstantsPass`
        computed (``export_model`` runs it), and what a converter noted (the outputs of an If
        whose condition is known).
        """
        if value is None:
            return None
        if value in self._consts:
            return self._consts[value]
        if value.const_value is None:
            return None
        array = np.asarray(value.const_value.numpy())
        self._consts[value] = array
        return array

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
        if result is None and self._inference_depth <= 50:
            self._inference_depth += 1
            try:
                result = self._node_shape(value)
            finally:
                self._inference_depth -= 1
        self._shapes[value] = result
        return result

    def _known_shape(self, value: ir.Value) -> tuple[int, ...] | None:
        if value.const_value is not None:
            return tuple(value.const_value.shape.numpy())
        if value.shape is not None and _static(value.shape) is not None:
            return _static(value.shape)
        const = self._consts.get(value)
        return None if const is None else tuple(const.shape)

    def _node_shape(self, value: ir.Value) -> tuple[int, ...] | None:
        """ONNX's per-node inference, fed the static shapes and known values found here."""
        node = value.producer()
        if node is None or node.domain not in ("", "ai.onnx"):
            return None
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
            if folded is not None and folded.size <= FOLD_SIZE_LIMIT:
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
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def dtype(self, value: ir.Value | None) -> ir.DataType | None:
        if value is None:
            return None
        if value.dtype is not None:
            return value.dtype
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


def _static(dims: Any) -> tuple[int, ...] | None:
    result = []
    for dim in dims:
        if not isinstance(dim, int):
            return None
        result.append(dim)
    return tuple(result)


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
