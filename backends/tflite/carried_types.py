"""ONNX element types TFLite has no type for, lowered onto types it has before TensorFlow traces.

TFLiteConverter refuses float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), E8M0, float4 E2M1 and the 2-
and 4-bit integers anywhere in a graph, so on the way to ``.tflite`` (never to a SavedModel,
whose TensorFlow holds most of them) every value of one is carried in a type TFLite has: the float
formats as their uint8 bit patterns, int4/int2 as int8 values, uint4/uint2 as uint8 values. The
graph is rewritten in ONNX ops on those carriers, so the arithmetic runs in LiteRT: a Cast from a
float format is a Gather from a table of its values (exact), a Cast to one is the threshold count
of ``float_codes`` (nearest-even, ``saturate`` and E8M0's ``round_mode`` exactly as onnx's
reference), a Cast to a small integer truncates and keeps the low bits as ml_dtypes does;
QuantizeLinear and DequantizeLinear follow. Ops that only move data (Reshape, Transpose, ...)
pass carriers through; any other op on such a value is refused. The graph's carried inputs and
outputs are returned with their ONNX types, which the writer records in the file's metadata
(``native/carried.py`` reinterprets them when LiteRT runs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from unframe.backends.tflite.float_codes import (
    FLOAT_FORMATS,
    ROUND_MODES,
    SATURATING,
    decoding_table,
    encoding_table,
)
from unframe.backends.tflite.native.carried import CARRIED_TYPES, to_carrier
from unframe.shared_ir.errors import UnsupportedOp, UnsupportedOpsError
from unframe.shared_ir.passes import infer_shapes

FRAMEWORK = "tflite"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The small integer types, carried as int8/uint8 values: (bits, signed).
SMALL_INTEGERS: dict[ir.DataType, tuple[int, bool]] = {
    ir.DataType.INT4: (4, True),
    ir.DataType.UINT4: (4, False),
    ir.DataType.INT2: (2, True),
    ir.DataType.UINT2: (2, False),
}
CARRIERS: dict[ir.DataType, ir.DataType] = {
    **{dtype: ir.DataType.UINT8 for dtype in FLOAT_FORMATS},
    ir.DataType.INT4: ir.DataType.INT8,
    ir.DataType.UINT4: ir.DataType.UINT8,
    ir.DataType.INT2: ir.DataType.INT8,
    ir.DataType.UINT2: ir.DataType.UINT8,
}
#: Ops that move or select elements without computing on them: carriers pass through as they
#: are (DequantizeLinear of a small integer computes on int8/uint8 values exactly the same).
_CARRIER_SAFE = {
    "Concat",
    "Expand",
    "Flatten",
    "Gather",
    "Identity",
    "Reshape",
    "Shape",
    "Size",
    "Slice",
    "Split",
    "Squeeze",
    "Tile",
    "Transpose",
    "Unsqueeze",
}


@dataclass
class CarriedModel:
    """The rewritten model and its carried graph inputs and outputs (ONNX name -> type name)."""

    model: ir.Model
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    #: The names of the types the model held that TFLite lacks (empty: nothing was rewritten).
    types: list[str] = field(default_factory=list)


def _carried(value: ir.Value | None) -> bool:
    return value is not None and value.dtype in CARRIERS


def carry_narrow_types(model: ir.Model, path: str | None = None) -> CarriedModel:
    """``model`` with every value of a type TFLite lacks carried in one it has (a rewritten copy;
    ``model`` itself is returned untouched where it holds none).

    Raises ``UnsupportedOpsError`` listing every node that computes on such a value in a way
    this lowering does not hold.
    """
    if not _holds_carried(model):
        return CarriedModel(model)
    model = model.clone()
    infer_shapes(model)  # every value's type: which ones are carried, and as what
    graph = model.graph
    carried = CarriedModel(
        model,
        {v.name or "": v.dtype.name for v in graph.inputs if _carried(v) and v.dtype},
        {v.name or "": v.dtype.name for v in graph.outputs if _carried(v) and v.dtype},
    )
    refused: list[UnsupportedOp] = []
    for serial, node in enumerate(list(graph)):
        values = [*node.inputs, *node.outputs]
        if not any(_carried(value) for value in values):
            continue
        try:
            _lower(graph, node, serial)
        except _Refusal as refusal:
            refused.append(
                UnsupportedOp(node.name or "", node.op_type, node.domain, reason=str(refusal))
            )
    for node in graph.all_nodes():
        if node.graph is not graph and any(_carried(v) for v in (*node.inputs, *node.outputs)):
            refused.append(
                UnsupportedOp(
                    node.name or "",
                    node.op_type,
                    node.domain,
                    reason="a value TFLite has no type for inside a subgraph is not converted",
                )
            )
    if refused:
        raise UnsupportedOpsError(refused, framework=FRAMEWORK, path=path)
    carried.types = _retype(graph)
    return carried


class _Refusal(Exception):
    pass


def _holds_carried(model: ir.Model) -> bool:
    """Whether a value of ``model`` has, or an op makes one of, a type TFLite lacks (read from
    attributes too: the outputs of a model not shape-inferred have no type yet)."""
    graph = model.graph
    if any(_carried(v) for v in (*graph.inputs, *graph.outputs, *graph.initializers.values())):
        return True
    for node in graph.all_nodes():
        if any(_carried(value) for value in (*node.inputs, *node.outputs)):
            return True
        for name in ("to", "output_dtype"):
            attr = node.attributes.get(name)
            if attr is not None and attr.type == ir.AttributeType.INT:
                if attr.as_int() in {int(dtype) for dtype in CARRIERS}:
                    return True
        attr = node.attributes.get("value")
        if attr is not None and attr.type == ir.AttributeType.TENSOR:
            if attr.as_tensor().dtype in CARRIERS:
                return True
    return False


def _retype(graph: ir.Graph) -> list[str]:
    """Every carried value's type becomes its carrier; initializers hold the carrier's data.
    Returns the names of the types carried."""
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    values += [value for node in graph for value in node.outputs]
    found: set[str] = set()
    for value in values:
        dtype = value.dtype
        if dtype not in CARRIERS:
            continue
        found.add(dtype.name)
        if value.const_value is not None:
            array = to_carrier(value.const_value.numpy(), dtype.name)
            value.const_value = ir.tensor(array, name=value.name)
        value.type = ir.TensorType(CARRIERS[dtype])
    return sorted(found)


class _Builder:
    """New nodes and constants for one node's lowering, named after it (under its name, TF's
    name scopes lead TFLiteConverter's errors back to it; ``serial`` keeps unnamed ones apart)."""

    def __init__(self, graph: ir.Graph, node: ir.Node, serial: int) -> None:
        self.graph = graph
        self.base = f"{node.name or node.op_type}/carried{serial}"
        self.nodes: list[ir.Node] = []

    def op(
        self, op_type: str, inputs: Sequence[ir.Value | None], dtype: ir.DataType, **attrs: object
    ) -> ir.Value:
        node = ir.node(
            op_type,
            inputs,
            attributes=attrs,  # type: ignore[arg-type]
            name=f"{self.base}/{op_type}_{len(self.nodes)}",
        )
        node.outputs[0].type = ir.TensorType(dtype)
        node.outputs[0].name = node.name
        self.nodes.append(node)
        return node.outputs[0]

    def const(self, array: np.ndarray, hint: str) -> ir.Value:
        name = f"{self.base}/{hint}_{len(self.graph.initializers)}"
        tensor = ir.tensor(np.asarray(array), name=name)
        value = ir.Value(
            name=name,
            type=ir.TensorType(tensor.dtype),
            shape=ir.Shape(tensor.shape.numpy()),
            const_value=tensor,
        )
        self.graph.register_initializer(value)
        return value

    def cast(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        return self.op("Cast", [value], dtype, to=int(dtype))

    # -- the float formats -------------------------------------------------------------------
    def decode(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        """A carried value as float32 (the float formats exactly; the integers' values)."""
        if dtype in FLOAT_FORMATS:
            values = decoding_table(dtype)
            infinite = np.isinf(values)
            # TFLiteConverter stores an infinite constant as the largest float32: the table
            # holds that, and infinities are made at run time by doubling it.
            finite = np.where(infinite, np.sign(values) * _FLOAT32_MAX, values)
            table = self.const(finite.astype(np.float32), f"{dtype.name.lower()}_values")
            index = self.cast(value, ir.DataType.INT32)
            decoded = self.op("Gather", [table, index], ir.DataType.FLOAT, axis=0)
            if not infinite.any():
                return decoded
            factors = self.const(np.where(infinite, 2.0, 1.0).astype(np.float32), "inf_factors")
            factor = self.op("Gather", [factors, index], ir.DataType.FLOAT, axis=0)
            return self.op("Mul", [decoded, factor], ir.DataType.FLOAT)
        if dtype == ir.DataType.FLOAT:
            return value
        return self.cast(value, ir.DataType.FLOAT)

    def encode(
        self, x: ir.Value, dtype: ir.DataType, saturate: bool, round_mode: str = "up"
    ) -> ir.Value:
        """float32 ``x`` as ``dtype``'s uint8 bit patterns (see ``float_codes``)."""
        # saturate applies to the float8 formats and E8M0; float4's cast always saturates.
        saturating = saturate and (dtype in SATURATING or dtype == ir.DataType.FLOAT8E8M0)
        table = encoding_table(dtype, saturating, round_mode)
        float32, int32 = ir.DataType.FLOAT, ir.DataType.INT32
        magnitude = self.op("Abs", [x], float32)
        finite = table.thresholds[np.isfinite(table.thresholds)]
        index = self._count_reached(magnitude, finite, dtype)
        if len(finite) < len(table.thresholds):
            # Infinity itself is a threshold (TFLiteConverter would store it as the largest
            # float32): only infinity is above that.
            largest = self.const(np.array(_FLOAT32_MAX, np.float32), "float32_max")
            infinite = self.op("Greater", [magnitude, largest], ir.DataType.BOOL)
            index = self.op("Add", [index, self.cast(infinite, ir.DataType.INT32)], int32)
        # Selected in int32 (TFLite's SELECT_V2 takes no uint8 here), narrowed at the end.
        positive = self.op(
            "Gather",
            [self.const(table.positive.astype(np.int32), "positive_codes"), index],
            int32,
            axis=0,
        )
        code = positive
        if not np.array_equal(table.positive, table.negative):
            negative = self.op(
                "Gather",
                [self.const(table.negative.astype(np.int32), "negative_codes"), index],
                int32,
                axis=0,
            )
            zero = self.const(np.array(0.0, np.float32), "zero")
            one = self.const(np.array(1.0, np.float32), "one")
            # 1 / -0.0 is -inf: -0.0 keeps its sign bit, as the reference's cast does.
            below = self.op("Less", [x, zero], ir.DataType.BOOL)
            reciprocal = self.op("Div", [one, x], float32)
            signed_zero = self.op("Less", [reciprocal, zero], ir.DataType.BOOL)
            sign = self.op("Or", [below, signed_zero], ir.DataType.BOOL)
            code = self.op("Where", [sign, negative, positive], int32)
        is_nan = self.op("IsNaN", [x], ir.DataType.BOOL)
        nan = self.const(np.array(table.nan, np.int32), "nan_code")
        return self.cast(self.op("Where", [is_nan, nan, code], int32), ir.DataType.UINT8)

    def _count_reached(
        self, magnitude: ir.Value, thresholds: np.ndarray, dtype: ir.DataType
    ) -> ir.Value:
        """How many of the ascending ``thresholds`` are <= each element of ``magnitude``, by
        binary lifting: log2 steps of a Gather and a comparison, memory of one tensor (a
        comparison against every threshold at once would hold 128-255 per element)."""
        int32 = ir.DataType.INT32
        steps = max(1, int(len(thresholds)).bit_length())
        # Entry 0 is never read; NaN pads compare false, so they are never reached.
        padded = np.full(2**steps, np.nan, np.float32)
        padded[1 : len(thresholds) + 1] = thresholds
        table = self.const(padded, f"{dtype.name.lower()}_thresholds")
        index: ir.Value | None = None
        for step in (2**k for k in reversed(range(steps))):
            stride = self.const(np.array(step, np.int32), "step")
            candidate = stride if index is None else self.op("Add", [index, stride], int32)
            bound = self.op("Gather", [table, candidate], ir.DataType.FLOAT, axis=0)
            reached = self.op("GreaterOrEqual", [magnitude, bound], ir.DataType.BOOL)
            kept = self.const(np.array(0, np.int32), "zero_index") if index is None else index
            index = self.op("Where", [reached, candidate, kept], int32)
        assert index is not None
        return index

    # -- the small integers ------------------------------------------------------------------
    def wrap(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        """An int32 value's low bits as ``dtype`` (as ml_dtypes and a C cast keep them), in its
        carrier."""
        bits, signed = SMALL_INTEGERS[dtype]
        int32 = ir.DataType.INT32
        span = self.const(np.array(2**bits, np.int32), "span")
        if signed:
            half = self.const(np.array(2 ** (bits - 1), np.int32), "half")
            shifted = self.op("Add", [value, half], int32)
            value = self.op("Sub", [self.op("Mod", [shifted, span], int32), half], int32)
        else:
            value = self.op("Mod", [value, span], int32)
        return self.cast(value, CARRIERS[dtype])


def _lower(graph: ir.Graph, node: ir.Node, serial: int) -> None:
    if node.domain not in ("", "ai.onnx"):
        raise _Refusal("TFLite has no type for its input or output; unframe carries such values")
    if node.op_type in ("Cast", "CastLike"):
        _lower_cast(graph, node, serial)
    elif node.op_type == "QuantizeLinear":
        _lower_quantize(graph, node, serial)
    elif node.op_type == "Constant":
        attr = node.attributes.get("value")
        if attr is None or attr.type != ir.AttributeType.TENSOR:
            raise _Refusal("a constant of a type TFLite lacks is taken from its 'value' only")
        tensor = attr.as_tensor()
        held = ir.tensor(to_carrier(tensor.numpy(), tensor.dtype.name), name=tensor.name)
        node.attributes["value"] = ir.AttrTensor("value", held)
    elif node.op_type == "DequantizeLinear":
        source = node.inputs[0]
        if source is not None and source.dtype in FLOAT_FORMATS:
            _lower_dequantize(graph, node, serial)
    elif node.op_type not in _CARRIER_SAFE:
        kinds = sorted(
            {
                v.dtype.name
                for v in (*node.inputs, *node.outputs)
                if v is not None and v.dtype in CARRIERS
            }
        )
        raise _Refusal(
            f"TFLite has no {'/'.join(kinds)} type; unframe carries such values only through "
            "Cast, CastLike, QuantizeLinear, DequantizeLinear and ops that move data"
        )


def _replace(graph: ir.Graph, node: ir.Node, builder: _Builder, result: ir.Value) -> None:
    old = node.outputs[0]
    wanted = old.dtype
    if result.producer() is None or result.producer() not in builder.nodes:
        result = builder.op("Identity", [result], result.dtype or ir.DataType.UNDEFINED)
    ir.convenience.replace_nodes_and_values(graph, node, [node], builder.nodes, [old], [result])
    if wanted is not None:
        result.type = ir.TensorType(wanted)  # retyped to its carrier with the rest


def _attr_int(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return default if attr is None else int(attr.as_int())


def _lower_cast(graph: ir.Graph, node: ir.Node, serial: int) -> None:
    source_value, target_value = node.inputs[0], node.outputs[0]
    if source_value is None or source_value.dtype is None or target_value.dtype is None:
        raise _Refusal("needs the element types of its input and output")
    source, target = source_value.dtype, target_value.dtype
    saturate = bool(_attr_int(node, "saturate", 1))
    mode_attr = node.attributes.get("round_mode")
    round_mode = "up" if mode_attr is None else str(mode_attr.as_string())
    if round_mode not in ROUND_MODES:
        raise _Refusal(f"round_mode {round_mode!r} is none of {', '.join(ROUND_MODES)}")
    if source in (ir.DataType.STRING,) or target in (ir.DataType.STRING,):
        raise _Refusal("casts between strings and the types TFLite lacks are not converted")
    builder = _Builder(graph, node, serial)
    value: ir.Value = source_value
    if target in FLOAT_FORMATS:
        as_float = builder.decode(value, source) if source in CARRIERS else value
        if source not in CARRIERS and source != ir.DataType.FLOAT:
            as_float = builder.cast(value, ir.DataType.FLOAT)
        result = builder.encode(as_float, target, saturate, round_mode)
    elif target in SMALL_INTEGERS:
        if source in FLOAT_FORMATS:
            value = builder.decode(value, source)
        result = builder.wrap(builder.cast(value, ir.DataType.INT32), target)
    elif source in FLOAT_FORMATS:
        decoded = builder.decode(value, source)
        result = decoded if target == ir.DataType.FLOAT else builder.cast(decoded, target)
    else:  # a small integer to a type TFLite has: its value, cast
        result = builder.cast(value, target)
    _replace(graph, node, builder, result)


def _per_axis(builder: _Builder, param: ir.Value, like: ir.Value, axis: int) -> ir.Value:
    """A per-axis (1-D) scale or zero point reshaped to broadcast against ``like``."""
    if param.shape is None or like.shape is None:
        raise _Refusal("needs the ranks of x and its scale")
    if len(param.shape) == 0:
        return param
    rank = len(like.shape)
    axis = axis + rank if axis < 0 else axis
    dims = np.array([-1 if i == axis else 1 for i in range(rank)], np.int64)
    return builder.op(
        "Reshape", [param, builder.const(dims, "axis_shape")], param.dtype or ir.DataType.FLOAT
    )


def _lower_quantize(graph: ir.Graph, node: ir.Node, serial: int) -> None:
    x, scale = node.inputs[0], node.inputs[1]
    zero = node.inputs[2] if len(node.inputs) > 2 else None
    output = node.outputs[0]
    target = output.dtype
    if x is None or scale is None or target is None:
        raise _Refusal("needs x, its scale and the output's element type")
    builder = _Builder(graph, node, serial)
    if target in SMALL_INTEGERS:
        # QuantizeLinear to the carrier saturates to its own range; the small type's comes after.
        attributes = dict(node.attributes)
        if "output_dtype" in attributes:
            attributes["output_dtype"] = ir.AttrInt64("output_dtype", int(CARRIERS[target]))
        carrier = CARRIERS[target]
        quantize = ir.Node(
            "",
            "QuantizeLinear",
            list(node.inputs),
            attributes=list(attributes.values()),
            name=f"{builder.base}/QuantizeLinear",
        )
        quantize.outputs[0].type = ir.TensorType(carrier)
        builder.nodes.append(quantize)
        bits, signed = SMALL_INTEGERS[target]
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        numpy_type = CARRIED_TYPES[target.name][1]
        result = builder.op(
            "Clip",
            [
                quantize.outputs[0],
                builder.const(np.array(low, numpy_type), "low"),
                builder.const(np.array(high, numpy_type), "high"),
            ],
            carrier,
        )
        _replace(graph, node, builder, result)
        return
    if target not in FLOAT_FORMATS:
        raise _Refusal(f"quantizing to {target.name} from a carried type is not converted")
    if _attr_int(node, "block_size", 0):
        raise _Refusal(f"blocked quantization to {target.name} is not converted")
    precision = _attr_int(node, "precision", 0)
    if precision not in (0, int(ir.DataType.FLOAT)):
        raise _Refusal(
            f"x / scale in {ir.DataType(precision).name} before {target.name} is not converted"
        )
    axis = _attr_int(node, "axis", 1)
    as_float = x if x.dtype == ir.DataType.FLOAT else builder.cast(x, ir.DataType.FLOAT)
    divisor = _per_axis(builder, scale, x, axis)
    if scale.dtype != ir.DataType.FLOAT:
        divisor = builder.cast(divisor, ir.DataType.FLOAT)
    scaled = builder.op("Div", [as_float, divisor], ir.DataType.FLOAT)
    if zero is not None and target == ir.DataType.FLOAT4E2M1:
        # The reference adds a float4 zero point (and ignores a float8 one).
        shift = builder.decode(_per_axis(builder, zero, x, axis), target)
        scaled = builder.op("Add", [scaled, shift], ir.DataType.FLOAT)
    saturate = bool(_attr_int(node, "saturate", 1))
    _replace(graph, node, builder, builder.encode(scaled, target, saturate))


def _lower_dequantize(graph: ir.Graph, node: ir.Node, serial: int) -> None:
    x, scale = node.inputs[0], node.inputs[1]
    zero = node.inputs[2] if len(node.inputs) > 2 else None
    output = node.outputs[0]
    if x is None or scale is None or x.dtype is None or output.dtype is None:
        raise _Refusal("needs x, its scale and their element types")
    if _attr_int(node, "block_size", 0):
        raise _Refusal(f"blocked dequantization of {x.dtype.name} is not converted")
    axis = _attr_int(node, "axis", 1)
    builder = _Builder(graph, node, serial)
    value = builder.decode(x, x.dtype)
    if zero is not None and x.dtype == ir.DataType.FLOAT4E2M1:
        # The reference subtracts a float4 zero point (and ignores a float8 one).
        shift = builder.decode(_per_axis(builder, zero, x, axis), x.dtype)
        value = builder.op("Sub", [value, shift], ir.DataType.FLOAT)
    factor = _per_axis(builder, scale, x, axis)
    if scale.dtype != ir.DataType.FLOAT:
        factor = builder.cast(factor, ir.DataType.FLOAT)
    result = builder.op("Mul", [value, factor], ir.DataType.FLOAT)
    if output.dtype != ir.DataType.FLOAT:
        result = builder.cast(result, output.dtype)
    _replace(graph, node, builder, result)
