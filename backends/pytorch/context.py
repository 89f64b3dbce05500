"""``BuildContext``: what an op converter sees of the graph being built.

A converter gets the ONNX node and this context, emits ``torch.fx`` nodes through ``ctx.call`` /
``ctx.method``, and returns one fx node per ONNX output. See ``ops/__init__.py`` for the guide.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx_ir as ir
import torch
from torch import fx

from unframe.backends.pytorch import fx_functions
from unframe.backends.pytorch.dtypes import maybe_torch_dtype
from unframe.backends.pytorch.scope import free_values
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext, schema_default
from unframe.shared_ir.errors import ConversionError

FRAMEWORK = "pytorch"

#: An int list known at build time, element-wise symbolic (fx nodes yielding ints), or one fx node
#: that yields a ``list[int]`` at run time.
IntList = list[int | fx.Node] | fx.Node


@dataclass(frozen=True)
class Subgraph:
    """A graph attribute built as a submodule: call it with its inputs then ``captured``."""

    module: fx.Node  # get_attr of the submodule
    captured: tuple[fx.Node, ...]  # outer-scope values the body reads, passed after its inputs
    num_inputs: int
    num_outputs: int


class GraphBuilding(Protocol):
    """What a context needs of the graph builder (``builder.GraphBuilder`` is the one there is).

    Spelled out here so that the context depends on these few members, not on the driver module.
    """

    opset: int
    fx_graph: fx.Graph
    #: 1-D int tensors known element-wise (from Shape and ops on its result).
    shape_elements: dict[fx.Node, list[int | fx.Node]]

    def fx_value(self, value: ir.Value) -> fx.Node: ...

    def constant_of(self, value: ir.Value) -> np.ndarray | None: ...

    def make_constant(
        self, array: np.ndarray, hint: str = "const", dtype: torch.dtype | None = None
    ) -> fx.Node: ...

    def build_subgraph(
        self, graph: ir.Graph, hint: str, captures: Sequence[ir.Value] | None = None
    ) -> Subgraph: ...


class BuildContext:
    """The converter's view of one ONNX node and of the ``torch.fx`` graph being built."""

    def __init__(self, builder: GraphBuilding, node: ir.Node) -> None:
        self._builder = builder
        self.node = node
        self.opset: int = builder.opset
        self.graph: fx.Graph = builder.fx_graph

    # -- inputs ---------------------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    def has_input(self, index: int) -> bool:
        """Whether optional input ``index`` is present (not omitted, not an empty name)."""
        return index < len(self.node.inputs) and self.node.inputs[index] is not None

    def input(self, index: int) -> fx.Node:
        """The fx node that yields input ``index`` (a located error when the input is absent)."""
        value = self.node.inputs[index] if index < len(self.node.inputs) else None
        if value is None:
            raise self.error(f"input {index} of {self.node.op_type} is required but absent")
        return self._builder.fx_value(value)

    def optional_input(self, index: int) -> fx.Node | None:
        return self.input(index) if self.has_input(index) else None

    def inputs(self) -> list[fx.Node | None]:
        return [self.optional_input(i) for i in range(self.num_inputs)]

    def constant_input(self, index: int) -> np.ndarray | None:
        """Input ``index`` as a numpy array where it is known at build time, else None."""
        if not self.has_input(index):
            return None
        value = self.node.inputs[index]
        assert value is not None
        return self._builder.constant_of(value)

    def int_list(self, index: int) -> IntList:
        """Input ``index`` (a 1-D int tensor such as a shape) as a list for torch calls.

        Constant -> ``list[int]``; computed from ``Shape`` -> list of symbolic sizes (stays dynamic
        under ``torch.export``); otherwise an fx node calling ``tolist`` at run time.
        """
        array = self.constant_input(index)
        if array is not None:
            return [int(v) for v in array.reshape(-1)]
        node = self.input(index)
        elements = self._builder.shape_elements.get(node)
        if elements is not None:
            return list(elements)
        return self.call(fx_functions.to_int_list, node)

    def shape_elements(self, index: int) -> list[int | fx.Node] | None:
        """The element-wise list behind a shape-like input (constant or from ``Shape``), or None."""
        array = self.constant_input(index)
        if array is not None and array.ndim <= 1 and array.dtype.kind in "iu":
            return [int(v) for v in array.reshape(-1)]
        if not self.has_input(index):
            return None
        return self._builder.shape_elements.get(self.input(index))

    def set_shape_elements(self, node: fx.Node, elements: Sequence[int | fx.Node]) -> fx.Node:
        """Records that 1-D int64 ``node`` equals ``elements`` (ints or fx nodes yielding ints)."""
        self._builder.shape_elements[node] = list(elements)
        return node

    def input_dtype(self, index: int) -> torch.dtype | None:
        value = self.node.inputs[index] if index < len(self.node.inputs) else None
        return None if value is None else maybe_torch_dtype(value.dtype)

    def output_dtype(self, index: int = 0) -> torch.dtype | None:
        value = self.node.outputs[index] if index < len(self.node.outputs) else None
        return None if value is None else maybe_torch_dtype(value.dtype)

    def input_shape(self, index: int) -> tuple[int | None, ...] | None:
        """The IR's static shape of input ``index``: ints, None for symbolic dims; None if unknown."""
        value = self.node.inputs[index] if index < len(self.node.inputs) else None
        if value is None or value.shape is None:
            return None
        return tuple(d if isinstance(d, int) else None for d in value.shape)

    def input_rank(self, index: int) -> int | None:
        shape = self.input_shape(index)
        if shape is not None:
            return len(shape)
        array = self.constant_input(index)
        return None if array is None else array.ndim

    def output_used(self, index: int) -> bool:
        """Whether output ``index`` exists and is consumed or is a graph output."""
        if index >= len(self.node.outputs):
            return False
        value = self.node.outputs[index]
        return bool(value.name) and (bool(value.uses()) or value.is_graph_output())

    # -- emitting -------------------------------------------------------------------------------
    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> fx.Node:
        """Emits ``function(*args, **kwargs)``; args may hold fx nodes, lists, ints, dtypes."""
        return self.graph.call_function(function, tuple(args), dict(kwargs))

    def method(self, name: str, obj: fx.Node, *args: Any, **kwargs: Any) -> fx.Node:
        """Emits ``obj.name(*args, **kwargs)`` (a tensor method)."""
        return self.graph.call_method(name, (obj, *args), dict(kwargs))

    def getitem(self, obj: fx.Node, index: Any) -> fx.Node:
        return self.call(operator.getitem, obj, index)

    def unpack(self, obj: fx.Node, count: int) -> list[fx.Node]:
        return [self.getitem(obj, i) for i in range(count)]

    def make_constant(
        self,
        array: np.ndarray | float | int | bool,
        hint: str = "const",
        *,
        dtype: torch.dtype | None = None,
    ) -> fx.Node:
        """A new constant tensor (a buffer of the module, named after ``hint``) as an fx node."""
        return self._builder.make_constant(np.asarray(array), hint, dtype=dtype)

    def size(self, obj: fx.Node, dim: int) -> fx.Node:
        """``obj.size(dim)`` (a symbolic int under export)."""
        return self.method("size", obj, dim)

    def error(self, message: str) -> ConversionError:
        """A refusal located at this node, for the converter to raise."""
        return ConversionError(
            message,
            framework=FRAMEWORK,
            node=self.node.name or "",
            op_type=self.node.op_type,
            domain=self.node.domain or None,
            opset=self.opset,
        )

    # -- attributes -----------------------------------------------------------------------------
    def has_attr(self, name: str) -> bool:
        return name in self.node.attributes

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Attribute ``name`` as a Python value (ints, floats, str, lists, numpy, ir.Graph).

        Absent: ``default`` when given, else the ONNX schema's default (None if it has none).
        """
        attr = self.node.attributes.get(name)
        if isinstance(attr, ir.Attr) and not attr.is_ref():
            return _attr_value(attr)
        if default is not SCHEMA_DEFAULT:
            return default
        return schema_default(self.node, self.opset, name)

    def attr_int(self, name: str, default: Any = SCHEMA_DEFAULT) -> int:
        return int(self.attr(name, default))

    def attr_float(self, name: str, default: Any = SCHEMA_DEFAULT) -> float:
        return float(self.attr(name, default))

    def attr_str(self, name: str, default: Any = SCHEMA_DEFAULT) -> str:
        return str(self.attr(name, default))

    def attr_ints(self, name: str, default: Any = SCHEMA_DEFAULT) -> list[int] | None:
        value = self.attr(name, default)
        return None if value is None else [int(v) for v in value]

    def attr_floats(self, name: str, default: Any = SCHEMA_DEFAULT) -> list[float] | None:
        value = self.attr(name, default)
        return None if value is None else [float(v) for v in value]

    # -- subgraphs ------------------------------------------------------------------------------
    def subgraph(self, name: str, captures: Sequence[ir.Value] | None = None) -> Subgraph:
        """Builds graph attribute ``name`` as a submodule of the module being built.

        The submodule takes the graph's inputs then the outer values it reads (``captures`` when
        given, else its free variables in name order) and returns a tuple of its outputs.
        """
        graph = self.attr(name, None)
        if not isinstance(graph, ir.Graph):
            raise ValueError(f"{self.node.op_type} has no graph attribute {name!r}")
        return self._builder.build_subgraph(
            graph, hint=f"{self.node.name or 'node'}_{name}", captures=captures
        )

    def free_values(self, *names: str) -> list[ir.Value]:
        """The outer values read by the graph attributes ``names`` (union, name order)."""
        found: set[ir.Value] = set()
        for name in names:
            graph = self.attr(name, None)
            if isinstance(graph, ir.Graph):
                found |= free_values(graph)
        return sorted(found, key=lambda v: v.name or "")


def _attr_value(attr: ir.Attr) -> Any:
    kind = attr.type
    if kind == ir.AttributeType.INT:
        return attr.as_int()
    if kind == ir.AttributeType.FLOAT:
        return attr.as_float()
    if kind == ir.AttributeType.STRING:
        text = attr.as_string()
        return text.decode() if isinstance(text, bytes) else text
    if kind == ir.AttributeType.INTS:
        return list(attr.as_ints())
    if kind == ir.AttributeType.FLOATS:
        return list(attr.as_floats())
    if kind == ir.AttributeType.STRINGS:
        return [s.decode() if isinstance(s, bytes) else s for s in attr.as_strings()]
    if kind == ir.AttributeType.TENSOR:
        return attr.as_tensor().numpy()
    if kind == ir.AttributeType.TENSORS:
        return [t.numpy() for t in attr.as_tensors()]
    if kind == ir.AttributeType.GRAPH:
        return attr.as_graph()
    if kind == ir.AttributeType.GRAPHS:
        return list(attr.as_graphs())
    return attr.value


if TYPE_CHECKING:

    def _speaks_the_shared_vocabulary(context: BuildContext) -> ConverterContext[fx.Node]:
        """mypy checks here that ``BuildContext`` implements ``ConverterContext``."""
        return context
