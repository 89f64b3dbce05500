"""State of one export to TensorFlow: converted values with their physical layout, weights, names.

Every converted value is a :class:`Physical`: a ``tf.Tensor`` and the permutation that takes the
ONNX (logical) layout to the one the tensor is held in (``None``: as ONNX has it). Convolution
and pooling converters produce channels-last tensors (TensorFlow's CPU kernels take NHWC only);
layout-agnostic converters pass the permutation on; every other converter reads ``ctx.input(i)``,
the logical tensor, and the context inserts the one Transpose back at that region boundary (once
per value, counted in ``transposes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnx_ir as ir

from unframe.backends.tensorflow.native import tf_dtype, tf_name
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext
from unframe.shared_ir.errors import ConversionError

if TYPE_CHECKING:
    from types import ModuleType

FRAMEWORK = "tensorflow"

Perm = tuple[int, ...]


def channels_last(rank: int) -> Perm:
    """N, C, D1.. -> N, D1.., C (NCHW -> NHWC for rank 4)."""
    return (0, *range(2, rank), 1)


def inverse(perm: Perm) -> Perm:
    result = [0] * len(perm)
    for position, axis in enumerate(perm):
        result[axis] = position
    return tuple(result)


@dataclass(frozen=True)
class Physical:
    """A converted value: ``tensor`` holds the ONNX value transposed by ``perm`` (None: as is)."""

    tensor: Any
    perm: Perm | None = None

    def physical_axis(self, axis: int) -> int:
        """Where logical ``axis`` (non-negative) sits in ``tensor``."""
        return axis if self.perm is None else self.perm.index(axis)


@dataclass
class ExportState:
    """What one export accumulates across nodes."""

    tf: ModuleType
    #: "variables": float initializers become ``tf.Variable``s; "constants": graph constants.
    weights: str = "variables"
    #: "tensorflow", or "tflite": converters then emit TF ops TFLite's builtins hold where that
    #: is as exact (int32/float32 arithmetic, builtin-only formulas), read by ``for_tflite``.
    target: str = "tensorflow"
    env: dict[ir.Value, Physical] = field(default_factory=dict)
    #: Logical views of values held in another layout, made once per value.
    logical: dict[ir.Value, Any] = field(default_factory=dict)
    channels_last_views: dict[ir.Value, Any] = field(default_factory=dict)
    variables: list[Any] = field(default_factory=list)
    #: float32 tensors that hold float16 values already rounded (``held_float16``), as refs.
    rounded: set[Any] = field(default_factory=set)
    #: Transposes the layout propagation added at region boundaries.
    transposes: int = 0
    #: Weights made as variables by the current trace.
    weights_made: int = 0
    #: The converter of (node, opset), or None; set by the driver, so that subgraphs convert
    #: through the one registry without this module importing it (the registry names this
    #: module's context type).
    lookup: Callable[[ir.Node, int], Any] | None = None

    def convert_node(self, node: ir.Node, opset: int, converter: Any) -> None:
        """Runs ``converter`` on ``node`` under a name scope from the node's name and binds its
        results to the node's outputs."""
        ctx = ExportContext(self, node, opset)
        with self.tf.name_scope(ctx.name):
            results = list(converter(node, ctx))
            for value, result in zip(node.outputs, results, strict=False):
                if result is not None:
                    held = result if isinstance(result, Physical) else Physical(result)
                    self.env[value] = self.held_float16(value, held)

    # -- float16 in a TFLite export -------------------------------------------------------------
    # TFLite's builtins compute nothing in float16 (its CAST converts both ways): a TFLite export
    # holds float16 values as float32 between ops, each op's float16 result rounded to float16
    # and widened back. Every op then gives its float32 result rounded to float16, as
    # ``in_tflite_type`` does op by op; float16 inputs are widened and outputs narrowed at the
    # signature.

    def holds_float16_wide(self) -> bool:
        return self.target == "tflite"

    def widened(self, tensor: Any) -> Any:
        """``tensor`` as held between ops: float16 widened to float32 in a TFLite export."""
        tf = self.tf
        if self.holds_float16_wide() and getattr(tensor, "dtype", None) == tf.float16:
            wide = tf.cast(tensor, tf.float32)
            self.rounded.add(wide.ref())
            return wide
        return tensor

    def held_float16(self, value: ir.Value, held: Physical) -> Physical:
        """A converter's result for ``value`` as held: widened, or where it is float32 for a
        float16 value and not yet rounded, rounded to float16 and widened."""
        tf = self.tf
        tensor = held.tensor
        if not self.holds_float16_wide() or not hasattr(tensor, "dtype"):
            return held
        if tensor.dtype == tf.float16:
            return Physical(self.widened(tensor), held.perm)
        if (
            value.dtype == ir.DataType.FLOAT16
            and tensor.dtype == tf.float32
            and tensor.ref() not in self.rounded
        ):
            return Physical(self.widened(tf.cast(tensor, tf.float16)), held.perm)
        return held

    def held_dtype(self, dtype: ir.DataType | None, what: str) -> Any:
        """The TF type a value of ONNX type ``dtype`` is held in (float32 for float16 in a TFLite
        export)."""
        if dtype == ir.DataType.FLOAT16 and self.holds_float16_wide():
            return self.tf.float32
        return tf_dtype(dtype, what)

    def held_array(self, array: np.ndarray) -> np.ndarray:
        """A constant as held: float16 widened (exactly) in a TFLite export."""
        if array.dtype == np.float16 and self.holds_float16_wide():
            return array.astype(np.float32)
        return array

    def start_trace(self) -> None:
        """Forgets the values of an earlier trace (the variables stay)."""
        self.env.clear()
        self.logical.clear()
        self.channels_last_views.clear()
        self.rounded.clear()
        self.transposes = 0
        self.weights_made = 0

    def to_logical(self, value: ir.Value, held: Physical) -> Any:
        """``value`` in ONNX's layout, made once: a Reshape where the permutation moves only
        axes of size 1 (the memory order is the same), else a counted Transpose."""
        if held.perm is None:
            return held.tensor
        cached = self.logical.get(value)
        if cached is None:
            tf = self.tf
            back = inverse(held.perm)
            if _moves_only_unit_axes(held.tensor.shape.as_list(), held.perm):
                cached = tf.reshape(held.tensor, tf.gather(tf.shape(held.tensor), back))
            else:
                cached = tf.transpose(held.tensor, back)
                self.transposes += 1
            self.logical[value] = cached
        return cached


def _moves_only_unit_axes(physical_dims: list[int | None], perm: Perm) -> bool:
    """Whether the axes of ``perm`` that are not statically 1 keep their relative order."""
    kept = [axis for axis, dim in zip(perm, physical_dims, strict=True) if dim != 1]
    return kept == sorted(kept)


class ExportContext:
    """The converter words of ``ConverterContext`` for one node, plus TF and layout helpers."""

    def __init__(self, state: ExportState, node: ir.Node, opset: int) -> None:
        self.state = state
        self.tf = state.tf
        self.node = node
        self.opset = opset
        self.name = tf_name(node.name or node.op_type, "node")

    # -- the shared words -----------------------------------------------------------------------
    def input(self, index: int) -> Any:
        """Input ``index`` in ONNX's layout (a Transpose back where it is held channels-last)."""
        value = self._value(index)
        held = self.physical(index)
        if held.perm is None:
            return held.tensor
        return self.state.to_logical(value, held)

    def has_input(self, index: int) -> bool:
        return index < len(self.node.inputs) and self.node.inputs[index] is not None

    def constant_input(self, index: int) -> np.ndarray | None:
        if not self.has_input(index):
            return None
        value = self.node.inputs[index]
        assert value is not None
        if value.const_value is not None:
            return np.asarray(value.const_value.numpy())
        return None

    def make_constant(self, array: np.ndarray, hint: str = "const") -> Any:
        return self.tf.constant(self.state.held_array(array), name=tf_name(hint, "const"))

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        attribute = self.node.attributes.get(name)
        if isinstance(attribute, ir.Attr):
            if attribute.type == ir.AttributeType.TENSOR:
                return attribute.as_tensor().numpy()
            return attribute.value
        if default is not SCHEMA_DEFAULT:
            return default
        try:
            schema = onnx.defs.get_schema(self.node.op_type, self.opset, self.node.domain or "")
        except onnx.defs.SchemaError:
            schema = None
        found = schema.attributes.get(name) if schema is not None else None
        if found is None or not found.default_value.name:
            raise self.error(f"needs attribute {name!r}")
        return onnx.helper.get_attribute_value(found.default_value)

    def error(self, message: str) -> ConversionError:
        return ConversionError(
            message,
            framework=FRAMEWORK,
            node=self.node.name or "",
            op_type=self.node.op_type,
            opset=self.opset,
        )

    # -- TensorFlow helpers ---------------------------------------------------------------------
    def physical(self, index: int) -> Physical:
        """Input ``index`` as it is held (tensor and layout); initializers on first use."""
        value = self._value(index)
        held = self.state.env.get(value)
        if held is None:
            if value.const_value is None:
                raise self.error(f"input {value.name!r} is used before it is produced")
            held = Physical(self.weight(np.asarray(value.const_value.numpy()), value.name or "w"))
            self.state.env[value] = held
        return held

    def channels_last(self, index: int) -> Any:
        """Input ``index`` held channels-last (one boundary Transpose per value where it is not)."""
        value = self._value(index)
        held = self.physical(index)
        rank = len(held.tensor.shape)
        wanted = channels_last(rank)
        if held.perm == wanted:
            return held.tensor
        cached = self.state.channels_last_views.get(value)
        if cached is None:
            logical = self.input(index)
            dims = logical.shape.as_list()
            if _moves_only_unit_axes([dims[axis] for axis in wanted], wanted):
                cached = self.tf.reshape(logical, self.tf.gather(self.tf.shape(logical), wanted))
            else:
                cached = self.tf.transpose(logical, wanted)
                self.state.transposes += 1
            self.state.channels_last_views[value] = cached
        return cached

    def weight(self, array: np.ndarray, hint: str) -> Any:
        """A weight: a ``tf.Variable`` (float, in "variables" mode) or a constant, made outside
        the function being traced so that the module owns it."""
        tf = self.tf
        name = tf_name(hint, "w")
        array = self.state.held_array(array)
        if self.state.weights == "variables" and array.dtype.kind in "fc" and array.size > 1:
            # tf.function traces a function that makes variables twice; the second trace takes
            # the variables the first one made, in the same order.
            index = self.state.weights_made
            self.state.weights_made += 1
            if index < len(self.state.variables):
                return self.state.variables[index]
            with tf.init_scope():
                variable = tf.Variable(array, trainable=False, name=name)
            self.state.variables.append(variable)
            return variable
        return tf.constant(array, name=name)

    def convert_subgraph(self, graph: ir.Graph, inputs: Sequence[Any]) -> list[Any]:
        """Converts ``graph`` (an If branch, a Loop or Scan body) with its inputs bound to
        ``inputs``; returns its outputs in ONNX's layout.

        Called inside the function TensorFlow traces for the branch or body: what it makes
        (values, layout views, constants) stays there, and the enclosing values it reads are
        captured by TensorFlow. A refusal inside is raised as one ``UnsupportedOpsError``
        naming the subgraph's nodes.
        """
        from unframe.shared_ir.conversion import onnx_loop

        assert self.state.lookup is not None, "the driver sets the registry lookup"
        lookup = self.state.lookup

        state = self.state
        saved = (state.env, state.logical, state.channels_last_views)
        state.env, state.logical, state.channels_last_views = (dict(kept) for kept in saved)
        try:
            for value, tensor in zip(graph.inputs, inputs, strict=True):
                state.env[value] = Physical(state.widened(tensor))
            loop = onnx_loop(FRAMEWORK, "export", {"": self.opset})

            def convert(node: ir.Node) -> None:
                converter = lookup(node, self.opset)
                if converter is None:
                    raise ExportContext(state, node, self.opset).error(
                        f"no {FRAMEWORK} export converter"
                    )
                state.convert_node(node, self.opset, converter)

            loop.convert(list(graph), convert)
            return [self._subgraph_output(value) for value in graph.outputs]
        finally:
            state.env, state.logical, state.channels_last_views = saved

    def _subgraph_output(self, value: ir.Value) -> Any:
        held = self.state.env.get(value)
        if held is None:
            if value.const_value is None:
                raise self.error(f"subgraph output {value.name!r} is never produced")
            held = Physical(self.make_constant(np.asarray(value.const_value.numpy())))
        if not hasattr(held.tensor, "dtype"):
            # A sequence or optional (ops/sequence.py) held between converters.
            raise self.error(f"subgraph output {value.name!r} is a sequence or optional")
        # An identity: a body output that is one of its inputs still needs a tensor of its own.
        return self.tf.identity(self.state.to_logical(value, held))

    def input_shape(self, index: int) -> tuple[int | None, ...] | None:
        """Input ``index``'s logical shape (None for a dim or rank not known statically)."""
        value = self._value(index)
        if value.shape is not None:
            return tuple(dim if isinstance(dim, int) else None for dim in value.shape)
        held = self.state.env.get(value)
        if held is not None and held.tensor.shape.rank is not None:
            dims = held.tensor.shape.as_list()
            if held.perm is not None:
                dims = [dims[held.perm.index(axis)] for axis in range(len(dims))]
            return tuple(dims)
        if value.const_value is not None:
            return tuple(value.const_value.shape.numpy())
        return None

    def input_rank(self, index: int) -> int | None:
        shape = self.input_shape(index)
        return None if shape is None else len(shape)

    def input_dtype(self, index: int) -> Any:
        return self.physical(index).tensor.dtype

    def output_dtype(self, index: int = 0) -> Any:
        """The TF type output ``index`` is held in (see ``ExportState.held_dtype``)."""
        return self.state.held_dtype(self.node.outputs[index].dtype, f"output {index}")

    def int_list(self, index: int) -> list[int]:
        """A constant integer input as a list; a refusal where it is computed at run time."""
        array = self.constant_input(index)
        if array is None:
            raise self.error(f"input {index} must be a constant (it is computed at run time)")
        return [int(v) for v in array.reshape(-1)]

    def ints(self, name: str, default: Sequence[int] | None = None) -> list[int]:
        found = self.attr(name, default if default is not None else SCHEMA_DEFAULT)
        return [int(v) for v in (found or [])]

    def _value(self, index: int) -> ir.Value:
        if not self.has_input(index):
            raise self.error(f"input {index} is missing")
        value = self.node.inputs[index]
        assert value is not None
        return value


if TYPE_CHECKING:

    def _speaks_the_converter_vocabulary(ctx: ExportContext) -> ConverterContext[Any]:
        return ctx  # mypy checks that ExportContext implements the Protocol
