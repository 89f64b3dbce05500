"""State of one Core ML import: the IR nodes built so far, and the converter words.

``GraphBuilder`` holds what both kinds of Core ML model build (nodes, initializers, inputs, names
that are unique and carry the native op's name); ``MilContext`` reads a MIL op's named inputs and
``LayerContext`` (``layers.py``) a NeuralNetwork layer's blobs and parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.native import SOURCE_NAMES_KEY, source_name
from unframe.backends.coreml.native.reading import numpy_dtype
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext, make_attribute
from unframe.shared_ir.errors import BadInputError, UnsupportedError

FRAMEWORK = "coreml"
#: The ONNX opset the frontend writes.
OPSET = 18


class GraphBuilder:
    """Builds an ``ir.Graph``: nodes named after the native op they come from, unique names."""

    def __init__(self, where: str, record: Mapping[str, str] | None = None) -> None:
        self.where = where
        #: MIL name -> the ONNX name a unframe backend wrote it for (``native.names``).
        self.record: Mapping[str, str] = record or {}
        self.nodes: list[ir.Node] = []
        self.inputs: list[ir.Value] = []
        self.initializers: dict[str, ir.Value] = {}
        #: Native value names (MIL vars, NN blobs) -> their IR values.
        self.values: dict[str, ir.Value] = {}
        #: The native op being converted: its name and type, for node names and messages.
        self.op_name = ""
        self.op_type = ""
        self._bound: set[int] = set()
        self._taken: set[str] = set()
        #: Node names are a namespace of their own in ONNX (a node may share its output's name).
        self._node_names: set[str] = set()
        self._counter = 0

    # -- names --------------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name = base
        while name in self._taken:
            self._counter += 1
            name = f"{base}__{self._counter}"
        self._taken.add(name)
        return name

    def unique_node(self, base: str) -> str:
        name = base
        while name in self._node_names:
            self._counter += 1
            name = f"{base}__{self._counter}"
        self._node_names.add(name)
        return name

    def rename_away(self, value: ir.Value) -> None:
        """Gives ``value`` another name, freeing its own for a value that needs it (outputs)."""
        old = value.name or "value"
        value.name = self.unique(f"{old}__blob")
        self._taken.discard(old)

    def source(self, native_name: str) -> str:
        """The name a native name stands for (the ONNX name a unframe backend recorded)."""
        return source_name(self.record, native_name)

    # -- building -----------------------------------------------------------------------------
    def node(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        num_outputs: int = 1,
    ) -> list[ir.Value]:
        """Appends an ONNX node named after the native op being converted."""
        base = self.source(self.op_name) if self.op_name else op_type
        attrs = [make_attribute(key, value) for key, value in (attributes or {}).items()]
        node = ir.Node(
            "", op_type, list(inputs), attrs, num_outputs=num_outputs, name=self.unique_node(base)
        )
        for i, value in enumerate(node.outputs):
            value.name = self.unique(f"{base}/{op_type.lower()}_{i}")
        self.nodes.append(node)
        return list(node.outputs)

    def op1(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
    ) -> ir.Value:
        return self.node(op_type, inputs, attributes)[0]

    def make_constant(self, array: np.ndarray, hint: str = "const") -> ir.Value:
        """A new initializer holding ``array``, named after the native op."""
        array = np.asarray(array)
        return self.initializer(
            self.unique(f"{self.source(self.op_name) or 'graph'}/{hint}"), array
        )

    def initializer(self, name: str, array: np.ndarray) -> ir.Value:
        name = name if name not in self.initializers else self.unique(name)
        self._taken.add(name)
        tensor: ir.TensorProtocol
        if array.dtype.kind in "biuf":
            tensor = ir.Tensor(array, name=name)
        elif array.dtype.kind in "OUS":
            encoded = [str(item).encode() for item in array.reshape(-1)]
            tensor = ir.StringTensor(
                np.array(encoded, dtype=object).reshape(array.shape), name=name
            )
        else:
            tensor = ir.tensor(array, name=name)
        value = ir.Value(name=name, const_value=tensor)
        value.dtype = tensor.dtype
        value.shape = ir.Shape(array.shape)
        self.initializers[name] = value
        self._bound.add(id(value))
        return value

    def ints(self, values: Sequence[int]) -> ir.Value:
        return self.make_constant(np.array([int(v) for v in values], dtype=np.int64), "ints")

    def scalar(self, value: float, dtype: np.dtype | type = np.float32) -> ir.Value:
        return self.make_constant(np.array(value, dtype=dtype), "scalar")

    def add_input(
        self, native_name: str, dtype: ir.DataType, shape: Sequence[int | str | None] | None
    ) -> ir.Value:
        value = ir.Value(
            name=self.unique(self.source(native_name)),
            type=ir.TensorType(dtype),
            shape=ir.Shape(shape) if shape is not None else None,
        )
        self.inputs.append(value)
        self.values[native_name] = value
        self._bound.add(id(value))
        return value

    def bind(
        self,
        native_name: str,
        value: ir.Value,
        dtype: np.dtype | None = None,
        shape: Sequence[int | str | None] | None = None,
    ) -> None:
        """Makes ``value`` the native value ``native_name``; a value built for it takes its name."""
        if id(value) not in self._bound:
            self._taken.discard(value.name or "")
            value.name = self.unique(self.source(native_name))
            self._bound.add(id(value))
            if dtype is not None:
                value.dtype = ir.DataType.from_numpy(dtype)
            if shape is not None:
                value.shape = ir.Shape(shape)
        self.values[native_name] = value

    def identity(self, value: ir.Value, name: str) -> ir.Value:
        """An Identity of ``value`` named ``name`` (graph outputs that are inputs or weights)."""
        node = ir.Node("", "Identity", [value], name=self.unique_node(f"{name}/identity"))
        node.outputs[0].name = self.unique(name)
        node.outputs[0].type, node.outputs[0].shape = value.type, value.shape
        self.nodes.append(node)
        return node.outputs[0]

    def is_fixed(self, value: ir.Value) -> bool:
        """Whether ``value`` is a graph input or an initializer (never a node's output)."""
        return value in self.inputs or value.name in self.initializers

    # -- errors -------------------------------------------------------------------------------
    def error(self, message: str) -> UnsupportedError:
        """A refusal of the op being converted (the loop adds its name and type)."""
        return UnsupportedError(message, path=self.where, framework=FRAMEWORK)

    def bad(self, message: str) -> BadInputError:
        where = f"{self.op_type} {self.op_name!r}: " if self.op_name else ""
        return BadInputError(
            f"{where}{message}", path=self.where, framework=FRAMEWORK, op_type=self.op_type or None
        )


def _no_blocks(op: Any) -> None:
    raise AssertionError("MIL blocks are read only inside the driver")


class MilContext(GraphBuilder):
    """Reads the current MIL op: its inputs are named (``x``, ``weight``, ``axes``...)."""

    def __init__(self, where: str, record: Mapping[str, str] | None = None) -> None:
        super().__init__(where, record)
        self.op: Any = None
        #: Constants not yet read as tensors (a const's value becomes an initializer when a
        #: node reads it, so that axes and flags read as attributes leave no initializer).
        self.constants: dict[str, Any] = {}
        #: Converts one MIL op into ``nodes`` (set by the driver; cond reads its blocks with it).
        self.convert_op: Callable[[Any], None] = _no_blocks

    # -- the protocol's words ------------------------------------------------------------------
    def input(self, index: int) -> ir.Value:
        names = list(self.op.inputs)
        if index >= len(names):
            raise self.bad(f"needs at least {index + 1} input(s), has {len(names)}")
        return self.value(names[index])

    def has_input(self, index: int) -> bool:
        return index < len(self.op.inputs)

    def constant_input(self, index: int) -> np.ndarray | None:
        names = list(self.op.inputs)
        return self.const(names[index]) if index < len(names) else None

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Input ``name``'s value, which must be known before run time (MIL's parameters are
        inputs); ``default`` where the op does not have it."""
        if name not in self.op.inputs:
            if default is SCHEMA_DEFAULT:
                raise self.error(f"needs input {name!r}")
            return default
        found = self.const(name)
        if found is None:
            raise self.error(f"input {name!r} must be known before run time")
        return found

    # -- MIL's named inputs ---------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.op.inputs and self.op.inputs[name] is not None

    def var(self, name: str) -> Any:
        found = self.op.inputs.get(name)
        if found is None:
            raise self.bad(f"has no input {name!r}")
        return found

    def value(self, name: str) -> ir.Value:
        """The IR value of the op's input ``name``."""
        return self.var_value(self.var(name))

    def values_of(self, name: str) -> list[ir.Value]:
        """The IR values of a tuple input (``concat``'s ``values``)."""
        found = self.var(name)
        items = found if isinstance(found, tuple | list) else (found,)
        return [self.var_value(item) for item in items]

    def var_value(self, var: Any) -> ir.Value:
        value = self.values.get(var.name)
        if value is not None:
            return value
        if var.name in self.constants:
            array = np.asarray(self.constants.pop(var.name))
            value = self.initializer(self.source(var.name), array)
            self.values[var.name] = value
            return value
        raise self.bad(f"reads {var.name!r} before any op or input defines it")

    def const(self, name: str) -> Any:
        """Input ``name``'s value where it is known before run time (numpy or str), else None."""
        var = self.op.inputs.get(name)
        if var is None or isinstance(var, tuple | list):
            return None
        return var.val

    def dtype(self, name: str) -> np.dtype:
        found = numpy_dtype(self.var(name).dtype)
        if found is None:
            raise self.error(f"input {name!r} has an element type numpy cannot hold")
        return found

    def shape(self, name: str) -> tuple[Any, ...]:
        return tuple(self.var(name).shape)

    def rank(self, name: str) -> int:
        return len(self.var(name).shape)

    def out_shape(self, index: int = 0) -> tuple[Any, ...]:
        return tuple(self.op.outputs[index].shape)

    def static_out_shape(self, index: int = 0) -> list[int] | None:
        dims = self.out_shape(index)
        if all(isinstance(d, int | np.integer) for d in dims):
            return [int(d) for d in dims]
        return None


def user_metadata(spec: Any) -> dict[str, str]:
    """The model's description and user metadata, minus unframe's own name record."""
    meta = spec.description.metadata
    found = {f"coreml.{key}": str(value) for key, value in meta.userDefined.items()}
    found.pop(f"coreml.{SOURCE_NAMES_KEY}", None)
    for field in ("shortDescription", "author", "license", "versionString"):
        if getattr(meta, field):
            found[f"coreml.{field}"] = getattr(meta, field)
    return found


if TYPE_CHECKING:

    def _speaks_the_converter_vocabulary(ctx: MilContext) -> ConverterContext[ir.Value]:
        return ctx  # mypy checks that MilContext implements the Protocol
