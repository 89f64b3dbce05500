"""Freezing a concrete function for tf2onnx, its large weights held out of the GraphDef.

tf2onnx converts a frozen GraphDef: every variable a ``Const`` node. TensorFlow's freezing
(``convert_variables_to_constants_v2``) and grappler (``tf_optimize``) then copy each weight
through several protobufs and graphs: on a stack of Dense layers the process peaked at ~25x its
weight bytes, and no GraphDef can hold more than 2 GB. So in a model whose variables total more
than :data:`HOLD_OUT_ABOVE_BYTES`, each float variable of at least :data:`HOLD_OUT_MIN_BYTES`
is frozen as a ``Placeholder`` of its dtype and shape instead: tf2onnx sees a graph input, and
the IR makes it an initializer holding the variable's own array (``HeldWeight``), never copied
into a protobuf. Smaller models freeze as tf2onnx does, keeping every fusion tf2onnx makes on
constant weights (BatchNormalization into Conv, its LSTM rewriter).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unframe.frontends.tensorflow.quiet import import_tensorflow, quiet_tensorflow

#: A model whose variables total more than this holds its large weights out of the GraphDef.
HOLD_OUT_ABOVE_BYTES = 64 << 20
#: The smallest variable held out (smaller ones, per-channel statistics and biases, stay
#: constants: tf2onnx's handlers read some of them, FusedBatchNorm's among them).
HOLD_OUT_MIN_BYTES = 1 << 20

_HELD_DTYPES = ("float16", "float32", "float64")


@dataclass
class HeldWeight:
    """A variable frozen as a ``Placeholder``: its tensor in the frozen graph (``name:0``), the
    name the IR gives its initializer, and its value."""

    tensor: str
    name: str
    variable: Any

    def array(self) -> np.ndarray:
        """The variable's value: a view of TensorFlow's own buffer, not a copy.

        ``EagerTensor.numpy()`` copies; ``_numpy()`` is the array it copies, whose base keeps the
        tensor alive. Reading a resource variable aliases its buffer, and TF copies on a later
        write, so the view never changes under the IR.
        """
        tensor = self.variable.value()
        view = getattr(tensor, "_numpy", None)
        return np.asarray(view() if callable(view) else tensor.numpy())


@dataclass
class FrozenFunction:
    """A frozen GraphDef and the weights held out of it (graph inputs to feed as initializers)."""

    graph_def: Any
    held: list[HeldWeight]


def freeze_function(
    function: Any, *, taken_names: Sequence[str] = (), hold_out: bool | None = None
) -> FrozenFunction:
    """``function``'s graph with its variables as constants, its large weights held out.

    ``hold_out=None`` decides by size (see the module's docstring); True holds out every float
    variable of at least :data:`HOLD_OUT_MIN_BYTES`, False none. ``taken_names`` are names the
    IR already uses (the signature's), which held weights' names avoid.
    """
    tf = import_tensorflow()
    from tf2onnx import tf_loader

    inputs = [t.name for t in function.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in function.outputs if t.dtype != tf.resource]
    held = _weights_to_hold(function, hold_out, set(taken_names))
    with quiet_tensorflow():
        if not held:
            return FrozenFunction(tf_loader.from_function(function, inputs, outputs), [])
        graph_def = _freeze_holding_out(function, {weight.tensor for weight in held})
        graph_def = tf_loader.fix_freezing_errors_part2(graph_def)
        held_tensors = [weight.tensor for weight in held]
        # grappler feeds every Placeholder of a known shape a made-up tensor of that shape (1x
        # the weights again): it sees the held ones with unknown shapes, given back after it.
        shapes = _forget_shapes(graph_def, held_tensors)
        # as tf2onnx's from_function runs grappler: inside a graph (it exports a meta graph)
        with tf.Graph().as_default():
            tf.import_graph_def(graph_def, name="")
            graph_def = tf_loader.tf_optimize(inputs + held_tensors, outputs, graph_def)
        for node in graph_def.node:
            if node.name in shapes and node.op == "Placeholder":
                node.attr["shape"].shape.CopyFrom(shapes[node.name])
    return FrozenFunction(graph_def, held)


def _forget_shapes(graph_def: Any, tensors: Sequence[str]) -> dict[str, Any]:
    """Sets the ``tensors``' Placeholders to unknown rank; returns their shapes by node name."""
    names = {tensor.split(":")[0] for tensor in tensors}
    shapes = {}
    for node in graph_def.node:
        if node.name in names:
            shape = node.attr["shape"].shape
            shapes[node.name] = type(shape)()
            shapes[node.name].CopyFrom(shape)
            shape.Clear()
            shape.unknown_rank = True
    return shapes


def _weights_to_hold(function: Any, hold_out: bool | None, taken: set[str]) -> list[HeldWeight]:
    """The captured variables to hold out, by the rule of the module's docstring."""
    if hold_out is False:
        return []
    handles = {id(variable.handle): variable for variable in function.graph.variables}
    captured: list[tuple[str, Any, int]] = []
    for value, placeholder in function.graph.captures:
        variable = handles.get(id(value))
        if variable is None or not variable.shape.is_fully_defined():
            continue
        nbytes = int(variable.shape.num_elements()) * variable.dtype.size
        captured.append((placeholder.name, variable, nbytes))
    total = sum(nbytes for _, _, nbytes in captured)
    if hold_out is None and total <= HOLD_OUT_ABOVE_BYTES:
        return []
    held = []
    for tensor, variable, nbytes in captured:
        if nbytes < HOLD_OUT_MIN_BYTES or variable.dtype.name not in _HELD_DTYPES:
            continue
        name = _unique(_weight_name(variable, tensor), taken)
        held.append(HeldWeight(tensor, name, variable))
    return held


def _weight_name(variable: Any, tensor: str) -> str:
    """The variable's own name (Keras 3's path ``dense_0/kernel``, TF's ``name:0`` stripped)."""
    name = str(getattr(variable, "path", "") or getattr(variable, "name", "") or tensor)
    return re.sub(r":\d+$", "", name) or "weight"


def _unique(name: str, taken: set[str]) -> str:
    candidate, index = name, 1
    while candidate in taken:
        candidate = f"{name}_{index}"
        index += 1
    taken.add(candidate)
    return candidate


def _freeze_holding_out(function: Any, held_tensors: set[str]) -> Any:
    """TensorFlow's own freezing, except that the held variables become ``Placeholder``s.

    As tf2onnx's ``large_model`` freezing does, this drives TF's converter classes directly
    (``_FunctionConverterDataInEager``, then ``_replace_variables_by_constants``'s loop), with
    no concrete function built from the result. A held variable is never read: the converter
    is given a zero-stride stand-in of its shape, which costs no memory.
    """
    tf = import_tensorflow()
    from tensorflow.core.framework import attr_value_pb2
    from tensorflow.python.framework import convert_to_constants as freezing

    held_nodes = {tensor.split(":")[0] for tensor in held_tensors}
    held_ids = {
        id(variable)
        for value, placeholder in function.graph.captures
        if placeholder.name in held_tensors
        for variable in function.graph.variables
        if variable.handle is value
    }

    class HoldingOut(freezing._FunctionConverterDataInEager):  # type: ignore[name-defined,misc]
        def _eval(self, tensor: Any) -> Any:
            if id(tensor) in held_ids:
                zero = np.zeros((), dtype=tensor.dtype.as_numpy_dtype)
                return np.broadcast_to(zero, tuple(tensor.shape))
            return super()._eval(tensor)

    data = HoldingOut(func=function, lower_control_flow=False, aggressive_inlining=True)
    graph = freezing._GraphDef(data.graph_def)
    for name, tensor_data in data.tensor_data.items():
        convertible = graph.nodes[name]
        if name not in held_nodes:
            convertible.convert_variable_to_constant(None, tensor_data)
            continue
        # _VarHandle.convert_variable_to_constant, writing a Placeholder where it writes a Const.
        node = convertible.converted_self().node
        node.Clear()
        node.name = name
        node.op = "Placeholder"
        node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tensor_data.dtype))
        node.attr["shape"].shape.CopyFrom(tf.TensorShape(tensor_data.numpy.shape).as_proto())
        for edge in convertible.outgoing_edges:
            edge.destination.convertible.convert_variable_to_constant(edge, tensor_data)
    return graph.converted_self().graph_def
