"""``ExportContext``: what a converter sees of the ONNX node and of the MIL function being built.

Converters call coremltools' builder (``ctx.mb.relu(x=...)``) inside the function's block and
return one MIL ``Var`` per ONNX output. The driver names every op a converter added after the ONNX
node (``backends/coreml/driver.py``), so converters never pass ``name=``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.native import MilNames
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext, schema_default
from unframe.shared_ir.errors import ConversionError

FRAMEWORK = "coreml"

#: ONNX element types MIL holds, and the MIL dtype word for each. int64 is held as int32, as
#: coremltools' own converters do (Core ML has no 64-bit tensors); values out of int32 range are
#: refused where they are known. The narrower and unsigned integers are held as int32 too (MIL's
#: int8/uint8 hold only a few ops' weights), double and bfloat16 as float32 (as coremltools' PyTorch
#: converter holds float64); the package records each graph input's and output's ONNX type, and the
#: frontend casts back to it (``frontends/coreml/onnx_dtypes.py``).
MIL_DTYPES: dict[ir.DataType, str] = {
    ir.DataType.FLOAT: "fp32",
    ir.DataType.FLOAT16: "fp16",
    ir.DataType.DOUBLE: "fp32",
    ir.DataType.BFLOAT16: "fp32",
    ir.DataType.INT32: "int32",
    ir.DataType.INT64: "int32",
    ir.DataType.INT8: "int32",
    ir.DataType.INT16: "int32",
    ir.DataType.UINT8: "int32",
    ir.DataType.UINT16: "int32",
    ir.DataType.UINT32: "int32",
    ir.DataType.UINT64: "int32",
    ir.DataType.BOOL: "bool",
}
_INT32 = np.iinfo(np.int32)


def mil_array(array: np.ndarray) -> np.ndarray:
    """``array`` in an element type MIL holds (int64 narrowed to int32; a ValueError if it cannot)."""
    if array.dtype in (np.float32, np.float16, np.int32, np.bool_):
        return array
    if array.dtype == np.float64 or array.dtype.name == "bfloat16":
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
            raise ValueError("holds integers outside int32, the widest integer Core ML has")
        return array.astype(np.int32)
    raise ValueError(f"is {array.dtype}, an element type Core ML ML Programs do not hold")


def _no_subgraphs(graph: ir.Graph) -> list[Any]:
    raise ConversionError("subgraphs are converted only inside a driver", framework=FRAMEWORK)


class ExportContext:
    """The converter's view of one ONNX node and of the MIL function being built."""

    def __init__(self, mb: Any, values: dict[ir.Value, Any], names: MilNames, opset: int) -> None:
        #: coremltools' MIL ``Builder``.
        self.mb = mb
        self._values = values
        self.names = names
        self.opset = opset
        self.node: ir.Node = None  # type: ignore[assignment]  # set by the driver per node
        #: ops the context named itself (constants of initializers): the driver keeps their names.
        self.named_ops: set[int] = set()
        #: Converts a subgraph's nodes into the block being built and gives its outputs' vars
        #: (set by the driver; If and Loop build their branches and bodies with it).
        self.convert_subgraph: Callable[[ir.Graph], list[Any]] = _no_subgraphs
        #: How many subgraphs deep the conversion is: constants made there stay in their block.
        self.subgraph_depth = 0

    # -- the shared words -----------------------------------------------------------------------
    def has_input(self, index: int) -> bool:
        return index < len(self.node.inputs) and self.node.inputs[index] is not None

    def input(self, index: int) -> Any:
        """The MIL ``Var`` of input ``index`` (initializers become named ``const`` ops on first use)."""
        value = self.node.inputs[index] if index < len(self.node.inputs) else None
        if value is None:
            raise self.error(f"input {index} of {self.node.op_type} is required but absent")
        return self.var(value)

    def var(self, value: ir.Value) -> Any:
        found = self._values.get(value)
        if found is not None:
            return found
        if value.const_value is None:
            raise ConversionError(
                f"value {value.name!r} is used before it is produced", framework=FRAMEWORK
            )
        array = value.const_value.numpy()
        try:
            held = mil_array(array)
        except ValueError as error:
            raise self.error(f"constant {value.name!r} {error}") from None
        if self.subgraph_depth:
            # Made inside a branch's block: out of scope after it, so made again where needed.
            return self.mb.const(val=held)
        var = self.mb.const(val=held, name=self.names.claim(value.name or "const"))
        self.named_ops.add(id(var.op))
        self._values[value] = var
        return var

    def bind(self, value: ir.Value, var: Any) -> None:
        """Makes ``var`` the MIL var of ``value`` (a subgraph's input, bound by Scan and Loop)."""
        self._values[value] = var

    @contextlib.contextmanager
    def in_subgraph(self) -> Iterator[None]:
        """Around building a cond's or while_loop's blocks."""
        self.subgraph_depth += 1
        try:
            yield
        finally:
            self.subgraph_depth -= 1

    def constant_input(self, index: int) -> np.ndarray | None:
        if not self.has_input(index):
            return None
        value = self.node.inputs[index]
        assert value is not None
        if value.const_value is not None:
            return value.const_value.numpy()
        var = self._values.get(value)
        if var is not None and var.val is not None:
            # A value MIL computed while building (shape of a static tensor and the like).
            return np.asarray(var.val)
        return None

    def make_constant(self, array: np.ndarray, hint: str = "const") -> Any:
        try:
            held = mil_array(np.asarray(array))
        except ValueError as error:
            raise self.error(f"a constant {error}") from None
        return self.mb.const(val=held)

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Attribute ``name`` as a Python value; absent: ``default``, else the schema's default."""
        attr = self.node.attributes.get(name)
        if isinstance(attr, ir.Attr) and not attr.is_ref():
            value = attr.value
            if isinstance(value, ir.TensorProtocol):
                return value.numpy()
            if isinstance(value, bytes):
                return value.decode()
            if isinstance(value, tuple | list):
                return [v.decode() if isinstance(v, bytes) else v for v in value]
            return value
        if default is not SCHEMA_DEFAULT:
            return default
        return schema_default(self.node, self.opset, name)

    def error(self, message: str) -> ConversionError:
        return ConversionError(
            message,
            framework=FRAMEWORK,
            node=self.node.name or "",
            op_type=self.node.op_type,
            domain=self.node.domain or None,
            opset=self.opset,
        )

    # -- helpers --------------------------------------------------------------------------------
    def ints(self, index: int) -> list[int] | None:
        """Input ``index`` as a list of ints where it is known before run time."""
        array = self.constant_input(index)
        return None if array is None else [int(v) for v in array.reshape(-1)]

    def input_shape(self, index: int) -> tuple[int | None, ...] | None:
        """Input ``index``'s shape: ints, None for dims unknown before run time; None if unknown."""
        if not self.has_input(index):
            return None
        value = self.node.inputs[index]
        assert value is not None
        var = self._values.get(value)
        if var is not None and var.shape is not None and getattr(var, "rank", -1) >= 0:
            return tuple(d if isinstance(d, int) else None for d in var.shape)
        if value.const_value is not None:
            return tuple(value.const_value.shape.numpy())
        if value.shape is None:
            return None
        return tuple(d if isinstance(d, int) else None for d in value.shape)

    def input_rank(self, index: int) -> int:
        shape = self.input_shape(index)
        if shape is None:
            raise self.error(f"the rank of input {index} is unknown")
        return len(shape)

    def input_dtype(self, index: int) -> ir.DataType | None:
        value = self.node.inputs[index] if index < len(self.node.inputs) else None
        return None if value is None else value.dtype

    def output_dtype(self, index: int = 0) -> ir.DataType | None:
        return self.node.outputs[index].dtype if index < len(self.node.outputs) else None

    def output_used(self, index: int) -> bool:
        if index >= len(self.node.outputs):
            return False
        value = self.node.outputs[index]
        return bool(value.name) and (bool(value.uses()) or value.is_graph_output())

    def mil_dtype(self, dtype: ir.DataType | None) -> str:
        """The MIL dtype word for ``dtype`` (a refusal where MIL holds no such tensors)."""
        found = MIL_DTYPES.get(dtype) if dtype is not None else None
        if found is None:
            name = dtype.name if dtype is not None else "an unknown type"
            raise self.error(
                f"{name} tensors: Core ML ML Programs hold float32, float16, int32 (other "
                "integers as int32), bool"
            )
        return found


if TYPE_CHECKING:

    def _speaks_the_shared_vocabulary(context: ExportContext) -> ConverterContext[Any]:
        """mypy checks here that ``ExportContext`` implements ``ConverterContext``."""
        return context
