"""State of one export: the layers and params written so far, and the node being converted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from toyfw.native import Layer, encode
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext
from unframe.shared_ir.errors import ConversionError, UnframeError

FRAMEWORK = "toyfw"

#: A backend converter: reads the node through the context, writes layers with ``emit``.
Converter = Callable[[ir.Node, "ExportContext"], None]


class ExportContext(ConverterContext[str]):
    """Builds a toyfw document for one ``ir.Model``; a toy value is named by a string."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.layers: list[Layer] = []
        self.params: dict[str, Any] = {}
        self.node: ir.Node | None = None

    # -- the converter vocabulary every framework shares ---------------------------------------
    def input(self, index: int) -> str:
        value = self._node().inputs[index] if self.has_input(index) else None
        if value is None:
            raise self.error(f"needs input {index}")
        return value.name or ""

    def has_input(self, index: int) -> bool:
        inputs = self._node().inputs
        return index < len(inputs) and inputs[index] is not None

    def constant_input(self, index: int) -> np.ndarray | None:
        value = self._node().inputs[index] if self.has_input(index) else None
        tensor = None if value is None else value.const_value
        return None if tensor is None else tensor.numpy()

    def make_constant(self, array: np.ndarray, hint: str = "const") -> str:
        name = f"{self._node().name}/{hint}"
        self.params[name] = encode(array)
        return name

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        node = self._node()
        found = node.attributes.get(name)
        if isinstance(found, ir.Attr):
            return found.value
        if default is not SCHEMA_DEFAULT:
            return default
        schema = onnx.defs.get_schema(node.op_type, self.opset, node.domain)
        attribute = schema.attributes.get(name)
        if attribute is None or not attribute.default_value.name:
            raise self.error(f"needs attribute {name!r}")
        return onnx.helper.get_attribute_value(attribute.default_value)

    def error(self, message: str) -> UnframeError:
        """A refusal of this node; the loop adds where it is and lists it with the others."""
        return ConversionError(message)

    # -- writing --------------------------------------------------------------------------------
    def emit(self, kind: str, inputs: list[str], **attrs: Any) -> None:
        """Writes one layer for the current node, under the node's name (name provenance)."""
        node = self._node()
        outputs = [value.name or "" for value in node.outputs]
        self.layers.append(
            {"kind": kind, "name": node.name or "", "inputs": inputs, "outputs": outputs}
            | ({"attrs": attrs} if attrs else {})
        )

    def _node(self) -> ir.Node:
        if self.node is None:
            raise RuntimeError("a converter ran outside the conversion loop")
        return self.node
