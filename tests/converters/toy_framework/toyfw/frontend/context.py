"""State of one import: the IR values by toyfw name, the nodes built, the layer being converted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from toyfw.native import Layer
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext
from unframe.shared_ir.errors import BadInputError, UnframeError, UnsupportedError

FRAMEWORK = "toyfw"

#: A frontend converter: reads the layer through the context, builds IR nodes with ``emit``.
Converter = Callable[[Layer, "ImportContext"], None]


class ImportContext(ConverterContext[ir.Value]):
    """Builds an ``ir.Graph`` from toyfw layers."""

    def __init__(self, path: str, declared: dict[str, ir.Value]) -> None:
        self.path = path
        #: The graph outputs as the file declares them (type and shape), filled in by ``emit``.
        self.declared = declared
        self.values: dict[str, ir.Value] = {}
        self.initializers: list[ir.Value] = []
        self.nodes: list[ir.Node] = []
        self.layer: Layer | None = None

    # -- the converter vocabulary every framework shares ---------------------------------------
    def input(self, index: int) -> ir.Value:
        names = self._layer()["inputs"]
        if index >= len(names):
            raise self.bad(f"needs input {index}, has {len(names)}")
        if names[index] not in self.values:
            raise self.bad(f"reads {names[index]!r} before any input, param or layer wrote it")
        return self.values[names[index]]

    def has_input(self, index: int) -> bool:
        return index < len(self._layer()["inputs"])

    def constant_input(self, index: int) -> np.ndarray | None:
        tensor = self.input(index).const_value if self.has_input(index) else None
        return None if tensor is None else tensor.numpy()

    def make_constant(self, array: np.ndarray, hint: str = "const") -> ir.Value:
        return self.add_initializer(f"{self._layer()['name']}/{hint}", array)

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        attrs = self._layer().get("attrs", {})
        if name in attrs:
            return attrs[name]
        if default is SCHEMA_DEFAULT:  # toyfw has no schema: a layer without it is malformed
            raise self.bad(f"needs attribute {name!r}")
        return default

    def error(self, message: str) -> UnframeError:
        """A refusal of this layer; the loop adds where it is and lists it with the others."""
        return UnsupportedError(message)

    # -- building -------------------------------------------------------------------------------
    def add_initializer(self, name: str, array: np.ndarray) -> ir.Value:
        value = ir.Value(
            name=name,
            type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
            shape=ir.Shape(array.shape),
            const_value=ir.Tensor(array, name=name),
        )
        self.values[name] = value
        self.initializers.append(value)
        return value

    def emit(self, op_type: str, inputs: list[ir.Value], **attrs: float) -> ir.Value:
        """Appends the ONNX node for the current layer, under the layer's name (provenance).

        Its output keeps the layer's output name; every toyfw layer keeps its first input's type.
        """
        layer = self._layer()
        (name,) = layer["outputs"]
        if name in self.values:
            raise self.bad(f"writes {name!r}, which is already written")
        output = self.declared.get(name) or ir.Value(name=name, type=inputs[0].type)
        attributes = [ir.AttrFloat32(key, value) for key, value in attrs.items()]
        node = ir.Node("", op_type, inputs, attributes, outputs=[output], name=layer["name"])
        self.nodes.append(node)
        self.values[name] = output
        return output

    def bad(self, message: str) -> BadInputError:
        layer = self._layer()
        return BadInputError(message, path=self.path, node=layer["name"], op_type=layer["kind"])

    def _layer(self) -> Layer:
        if self.layer is None:
            raise RuntimeError("a converter ran outside the conversion loop")
        return self.layer
