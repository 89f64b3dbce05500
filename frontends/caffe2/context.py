"""State of one import: blob versions (SSA), the IR nodes built so far, argument readers."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import ArgumentReader, caffe2_pb2
from unframe.frontends.caffe2.arguments import BENIGN_ARGS
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConverterContext, make_attribute
from unframe.shared_ir.errors import BadInputError, UnsupportedError, UnsupportedOp
from unframe.shared_ir.passes import infer_node_types

FRAMEWORK = "caffe2"
OPSET = 18


class Args(ArgumentReader):
    """The importer's argument reader: Caffe2's, with the arguments that never matter left out
    of ``unread`` (``arguments.sort_unread`` tells what each unread one is)."""

    def __init__(self, op: caffe2_pb2.OperatorDef, ctx: ImportContext) -> None:
        super().__init__(op, ctx.bad)
        self.ctx = ctx

    def unread(self) -> set[str]:
        return super().unread() - BENIGN_ARGS


class ShapeNeededError(BadInputError):
    """An op needs the shape of a net input given without one (value_info.json or --input)."""


ImportConverter = Callable[[caffe2_pb2.OperatorDef, Args, "ImportContext"], None]

#: Converts a net's ops into a context (the driver's op loop), for control-flow subnets.
NetConverter = Callable[[caffe2_pb2.NetDef, "ImportContext"], None]


class ImportContext:
    """Builds an ``ir.Graph`` from a predict net, one Caffe2 op at a time."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.nodes: list[ir.Node] = []
        self.inputs: list[ir.Value] = []
        #: The main net's inputs (``inputs`` of a subnet context are its subgraph's).
        self.net_inputs = self.inputs
        self.initializers: dict[str, ir.Value] = {}
        self.blobs: dict[str, ir.Value] = {}
        self.versions: dict[str, int] = {}
        self.index = -1
        self.op: caffe2_pb2.OperatorDef | None = None
        #: Set in a subnet's context (an If branch, a loop body): its values' name prefix.
        self.scope: str | None = None
        #: The driver's op loop, which control-flow converters run on their subnets.
        self.convert_net: NetConverter | None = None
        self._taken: set[str] = set()
        self._counter = 0

    # -- blobs --------------------------------------------------------------------------------
    def read(self, blob: str) -> ir.Value:
        """The value a blob holds now; BadInputError where no op or input wrote it."""
        value = self.blobs.get(blob)
        if value is None:
            raise self.bad(f"reads blob {blob!r} before any op, input or init net wrote it")
        return value

    def input(self, index: int) -> ir.Value:
        assert self.op is not None
        if index >= len(self.op.input):
            raise self.bad(f"needs at least {index + 1} input(s), has {len(self.op.input)}")
        return self.read(self.op.input[index])

    def has_input(self, index: int) -> bool:
        return self.op is not None and index < len(self.op.input)

    def constant_input(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` where it is an initializer (known before running)."""
        return self.known_value(self.input(index)) if self.has_input(index) else None

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Argument ``name`` of the current op as Caffe2 holds it (i, f, s, ints, floats or
        strings), else ``default``; Caffe2 has no schema defaults here, so none is required."""
        assert self.op is not None
        for arg in self.op.arg:
            if arg.name == name:
                return _argument_value(arg)
        if default is SCHEMA_DEFAULT:
            raise self.unsupported(f"needs argument {name!r}")
        return default

    def error(self, message: str) -> UnsupportedError:
        """An error located at the current op (the Protocol's word for ``unsupported``)."""
        return self.unsupported(message)

    def optional_input(self, index: int) -> ir.Value | None:
        assert self.op is not None
        return self.read(self.op.input[index]) if index < len(self.op.input) else None

    def write(self, blob: str, value: ir.Value) -> None:
        """Makes ``value`` the blob's current version; an overwritten version gets a suffix."""
        if self.scope is not None:
            # A subgraph's values must not take the names of outer values, written later or not.
            value.name = self._unique(f"{self.scope}/{blob}")
            self.blobs[blob] = value
            return
        previous = self.blobs.get(blob)
        fixed = previous is not None and (
            previous in self.inputs or previous.name in self.initializers
        )
        if previous is not None and previous.name == blob and not fixed:
            count = self.versions.get(blob, 0) + 1
            self.versions[blob] = count
            previous.name = self._unique(f"{blob}__{count}")
        value.name = self._unique(blob) if fixed else blob
        self._taken.add(blob)
        self.blobs[blob] = value

    def output(self, index: int, value: ir.Value) -> None:
        assert self.op is not None
        if index < len(self.op.output):
            self.write(self.op.output[index], value)

    def num_outputs(self) -> int:
        assert self.op is not None
        return len(self.op.output)

    def _unique(self, base: str) -> str:
        name = base
        while name in self._taken:
            self._counter += 1
            name = f"{base}__{self._counter}"
        self._taken.add(name)
        return name

    # -- subnets ------------------------------------------------------------------------------
    def subnet(self, scope: str) -> ImportContext:
        """A context for a subnet (If branch, loop body) that sees this context's blobs.

        Initializers and names are shared with this context, so that the subgraph's constants
        live in the main graph and no value name is used twice. Call ``run`` to convert its ops.
        """
        child = copy.copy(self)
        child.nodes = []
        child.inputs = []  # the net's own inputs stay in ``net_inputs``
        child.blobs = dict(self.blobs)
        child.versions = dict(self.versions)
        child.scope = self._unique(scope)
        child.op, child.index = None, -1
        return child

    def run(self, net: caffe2_pb2.NetDef) -> None:
        """Converts ``net``'s ops into this context with the driver's op loop."""
        if self.convert_net is None:
            raise self.unsupported("subnets need the driver's op loop (ctx.convert_net)")
        self.convert_net(net, self)

    def add_subgraph_input(
        self, blob: str, dtype: ir.DataType, shape: Sequence[int | str | None] | None
    ) -> ir.Value:
        """A subgraph input (a loop body's iteration number, condition, carried values)."""
        value = ir.Value(
            name=self._unique(f"{self.scope}/{blob}"),
            type=ir.TensorType(dtype),
            shape=ir.Shape(shape) if shape is not None else None,
        )
        self.inputs.append(value)
        self.blobs[blob] = value
        return value

    def graph(self, outputs: Sequence[ir.Value], name: str) -> ir.Graph:
        """This subnet context's nodes as a subgraph with ``outputs``.

        An output the subgraph does not compute itself (an outer value, a weight, an input)
        goes through an Identity, so that every subgraph output is produced inside it.
        """
        own = {id(v) for node in self.nodes for v in node.outputs}
        results = [v if id(v) in own else self.identity(v, v.name or "out") for v in outputs]
        return ir.Graph(self.inputs, results, nodes=self.nodes, name=name)

    # -- building -----------------------------------------------------------------------------
    def node(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        num_outputs: int = 1,
    ) -> list[ir.Value]:
        """Appends an ONNX node (named after the Caffe2 op) and infers its outputs' types."""
        assert self.op is not None
        base = self.op.name or f"{self.op.type}_{self.index}"
        attrs = [make_attribute(key, value) for key, value in (attributes or {}).items()]
        node = ir.Node(
            "", op_type, list(inputs), attrs, num_outputs=num_outputs, name=self._unique(base)
        )
        for i, value in enumerate(node.outputs):
            value.name = self._unique(f"{base}/{op_type.lower()}_{i}")
        self.nodes.append(node)
        infer_node_types(node, OPSET)
        return list(node.outputs)

    def op1(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
    ) -> ir.Value:
        return self.node(op_type, inputs, attributes)[0]

    def opaque(self) -> None:
        """The current op as a node of domain ``caffe2``, its outputs of unknown type (inspect)."""
        assert self.op is not None
        inputs = [self.read(blob) for blob in self.op.input]
        base = self.op.name or f"{self.op.type}_{self.index}"
        node = ir.Node(
            "caffe2", self.op.type, inputs, num_outputs=len(self.op.output), name=self._unique(base)
        )
        self.nodes.append(node)
        for i, value in enumerate(node.outputs):
            self.output(i, value)

    def identity(self, value: ir.Value, blob: str) -> ir.Value:
        """An Identity of ``value``, for graph outputs that are inputs or initializers."""
        node = ir.Node("", "Identity", [value], name=self._unique(f"{blob}/identity"))
        node.outputs[0].name = self._unique(f"{blob}__out")
        node.outputs[0].type, node.outputs[0].shape = value.type, value.shape
        self.nodes.append(node)
        return node.outputs[0]

    def make_constant(self, array: np.ndarray, hint: str = "const") -> ir.Value:
        """A new initializer holding ``array``."""
        name = self._unique(f"{self.op.name or self.op.type if self.op else 'net'}/{hint}")
        value = ir.Value(name=name, const_value=_tensor(np.asarray(array), name))
        value.dtype = ir.DataType.from_numpy(np.asarray(array).dtype)
        value.shape = ir.Shape(np.asarray(array).shape)
        self.initializers[name] = value
        return value

    def ints(self, values: Sequence[int]) -> ir.Value:
        return self.make_constant(np.array(list(values), dtype=np.int64), "ints")

    def add_initializer(self, blob: str, array: np.ndarray | ir.TensorProtocol | None) -> None:
        """A weight; None: one whose value is not known (a net published without weights)."""
        tensor = _tensor(array, blob) if isinstance(array, np.ndarray) else array
        value = ir.Value(name=blob, const_value=tensor)
        if tensor is not None:
            value.dtype = tensor.dtype
            value.shape = ir.Shape(tensor.shape.numpy())
        self._taken.add(blob)
        self.initializers[blob] = value
        self.blobs[blob] = value

    def add_input(
        self, blob: str, dtype: ir.DataType, shape: Sequence[int | str | None] | None
    ) -> None:
        value = ir.Value(
            name=blob,
            type=ir.TensorType(dtype),
            shape=ir.Shape(shape) if shape is not None else None,
        )
        self._taken.add(blob)
        self.inputs.append(value)
        self.blobs[blob] = value

    # -- facts --------------------------------------------------------------------------------
    @staticmethod
    def known_value(value: ir.Value | None) -> np.ndarray | None:
        if value is None or value.const_value is None:
            return None
        return np.asarray(value.const_value.numpy())

    def rank(self, value: ir.Value) -> int:
        if value.shape is None:
            raise self.needs_shape(f"needs the rank of blob {value.name!r}, which is unknown")
        return len(value.shape)

    def shape(self, value: ir.Value) -> tuple[int, ...] | None:
        if value.shape is None or not all(isinstance(d, int) for d in value.shape):
            return None
        return tuple(int(d) for d in value.shape)  # type: ignore[arg-type]

    # -- errors -------------------------------------------------------------------------------
    def location(self) -> str:
        op_type = self.op.type if self.op is not None else "?"
        where = f"op {self.index} ({op_type})"
        return f"{self.scope}: {where}" if self.scope is not None else where

    def bad(self, message: str) -> BadInputError:
        return BadInputError(
            f"{self.location()}: {message}", path=self.where, framework=FRAMEWORK,
            op_type=self.op.type if self.op is not None else None,
        )  # fmt: skip

    def unsupported(self, message: str) -> UnsupportedError:
        return UnsupportedError(
            f"{self.location()}: {message}", path=self.where, framework=FRAMEWORK,
            op_type=self.op.type if self.op is not None else None,
        )  # fmt: skip

    def needs_shape(self, message: str) -> UnsupportedError | ShapeNeededError:
        """A converter needs a shape that is unknown here.

        Where a net input has no shape, that is the missing piece, and the user can give it:
        exit 2 saying how. With every input shaped, the importer failed to infer one: exit 3.
        """
        hint = self._shape_hint()
        if hint is None:
            return self.unsupported(message)
        return ShapeNeededError(
            f"{self.location()}: {message}", path=self.where, framework=FRAMEWORK,
            op_type=self.op.type if self.op is not None else None, hint=hint,
        )  # fmt: skip

    def refusal(self, error: UnsupportedError) -> UnsupportedOp:
        """The current op's entry in the list of every op the import refuses."""
        prefix = f"{self.location()}: "
        reason = error.message.removeprefix(prefix)
        if error.hint:
            reason = f"{reason} ({error.hint})"
        assert self.op is not None
        name = self.op.name or f"op {self.index}"
        return UnsupportedOp(
            node=f"{self.scope}/{name}" if self.scope is not None else name,
            op_type=self.op.type,
            reason=reason,
        )

    def _shape_hint(self) -> str | None:
        """What to do where a converter needs a shape that an input without one leaves unknown."""
        shapeless = [v.name for v in self.net_inputs if v.shape is None]
        if not shapeless:
            return None
        return (
            f"input(s) {', '.join(repr(n) for n in shapeless)} have no shape: give each with "
            f"--input NAME=DIMS (e.g. --input {shapeless[0]}=1,3,224,224) or a value_info.json "
            "beside the nets"
        )


def _tensor(array: np.ndarray, name: str) -> ir.TensorProtocol:
    """An IR tensor of ``array``; numeric arrays skip ``ir.tensor``'s protocol checks (slow)."""
    if array.dtype.kind in "biuf":
        return ir.Tensor(array, name=name)
    return ir.tensor(array, name=name)


def _argument_value(arg: caffe2_pb2.Argument) -> Any:
    """The one field an Argument holds, as Python values (None where it holds none)."""
    for field_name in ("i", "f", "s"):
        if arg.HasField(field_name):
            return getattr(arg, field_name)
    for field_name in ("ints", "floats", "strings"):
        values = getattr(arg, field_name)
        if values:
            return list(values)
    return None


if TYPE_CHECKING:

    def _speaks_the_converter_vocabulary(ctx: ImportContext) -> ConverterContext[ir.Value]:
        return ctx  # mypy checks that ImportContext implements the Protocol
