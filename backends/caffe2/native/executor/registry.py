"""The executor's op registry and the context an op function receives.

An op function takes an :class:`OpContext` and returns its outputs in order; it may return more
outputs than the op declares (the extra ones are dropped) but never fewer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.arguments import ArgumentReader
from unframe.backends.caffe2.native.dtypes import NUMPY_DTYPES, data_type_name
from unframe.shared_ir.errors import BadInputError, UnsupportedError
from unframe.shared_ir.op_registry import OpRegistry

FRAMEWORK = "caffe2"

#: The domain the executor's op types are registered in (Caffe2 op types are not ONNX's).
DOMAIN = "caffe2"

OpFunction = Callable[["OpContext"], Sequence[np.ndarray]]

#: Every op type the executor implements (as ``OpContext -> outputs``), at version 1.
CAFFE2_OPS: OpRegistry[OpFunction] = OpRegistry(FRAMEWORK, "run")


def caffe2_op(*op_types: str) -> Callable[[OpFunction], OpFunction]:
    """Registers the decorated function as the implementation of ``op_types``.

    Example::

        @caffe2_op("Relu")
        def relu(ctx: OpContext) -> list[np.ndarray]:
            return [np.maximum(ctx.input(0), 0)]
    """

    def decorate(function: OpFunction) -> OpFunction:
        for op_type in op_types:
            CAFFE2_OPS.register(op_type, since=1, domain=DOMAIN)(function)
        return function

    return decorate


@dataclass
class OpContext:
    """One operator about to run: its definition, position, input arrays and argument readers."""

    op: caffe2_pb2.OperatorDef
    index: int
    inputs: list[np.ndarray]
    seed: int = 0
    args: ArgumentReader = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.args = ArgumentReader(self.op, self.error)

    # -- inputs and outputs ---------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.op.output)

    def input(self, i: int) -> np.ndarray:
        """Input ``i``; a clear error where the op has fewer inputs."""
        if i >= len(self.inputs):
            raise self.error(f"needs at least {i + 1} input(s), has {len(self.inputs)}")
        return self.inputs[i]

    def optional_input(self, i: int) -> np.ndarray | None:
        return self.inputs[i] if i < len(self.inputs) else None

    # -- arguments (read by the one Caffe2 argument reader) ---------------------------------------
    def has(self, name: str) -> bool:
        return self.args.has(name)

    def arg_int(self, name: str, default: int) -> int:
        return self.args.integer(name, default)

    def arg_float(self, name: str, default: float) -> float:
        return self.args.number(name, default)

    def arg_str(self, name: str, default: str) -> str:
        return self.args.string(name, default)

    def arg_ints(self, name: str, default: Sequence[int] | None = None) -> list[int]:
        found = self.args.integers(name)
        if found is None:
            return list(default) if default is not None else []
        return found

    def arg_floats(self, name: str, default: Sequence[float] | None = None) -> list[float]:
        found = self.args.numbers(name)
        if found is None:
            return list(default) if default is not None else []
        return found

    def arg(self, name: str) -> caffe2_pb2.Argument | None:
        return self.args.get(name)

    def order(self) -> str:
        """The ``order`` argument, NCHW or NHWC."""
        order = self.arg_str("order", "NCHW").upper()
        if order not in ("NCHW", "NHWC"):
            raise self.error(f"unsupported order {order!r} (expected NCHW or NHWC)")
        return order

    def rng(self) -> np.random.Generator:
        """A generator seeded by the op's device option, else by the run's seed and op index."""
        option = self.op.device_option
        if self.op.HasField("device_option") and option.HasField("random_seed"):
            return np.random.default_rng(option.random_seed)
        return np.random.default_rng([self.seed, self.index])

    # -- errors ---------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        name = f" {self.op.name!r}" if self.op.name else ""
        return f"op {self.index}{name}"

    def error(self, message: str) -> BadInputError:
        """An error about this op's inputs or arguments."""
        return BadInputError(
            message, framework=FRAMEWORK, node=self.where, op_type=self.op.type or "?"
        )

    def unsupported(self, message: str) -> UnsupportedError:
        """An error about a valid use of this op that the executor does not implement."""
        return UnsupportedError(
            message, framework=FRAMEWORK, node=self.where, op_type=self.op.type or "?"
        )


#: The C++ names of the element types Caffe2's kernels are registered for.
_CPP_NAMES: dict[np.dtype, str] = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.bool_): "bool",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int16): "int16",
    np.dtype(np.float16): "float16",
    np.dtype(object): "std::string",
}


@dataclass(frozen=True)
class KernelTypes:
    """The element types Caffe2 registers an op's CPU kernel for, and the source that says so.

    Caffe2 dispatches on the input's type and throws for any type outside its list (and a kernel
    written for float reads ``X.data<float>()``, which throws for any other type), so a net that
    feeds another type runs here but not on Caffe2.
    """

    dtypes: frozenset[np.dtype]
    source: str

    @classmethod
    def of(cls, source: str, *dtypes: type) -> KernelTypes:
        return cls(frozenset(np.dtype(d) for d in dtypes), source)

    def check(self, ctx: OpContext, x: np.ndarray, what: str = "input 0") -> None:
        """A clear error where ``x``'s element type is not one of Caffe2's for this op."""
        if x.dtype not in self.dtypes:
            names = ", ".join(sorted(_CPP_NAMES.get(d, str(d)) for d in self.dtypes))
            raise ctx.error(
                f"Caffe2 registers {ctx.op.type or '?'} for {names} only "
                f"(caffe2/operators/{self.source}); {what} is {_CPP_NAMES.get(x.dtype, x.dtype)}"
            )


#: Caffe2's ``NumericTypes`` (caffe2/operators/elementwise_ops.h).
NUMERIC_TYPES = (np.int32, np.int64, np.float32, np.float64)


def canonical_axis(ctx: OpContext, axis: int, ndim: int, *, extra: int = 0) -> int:
    """``axis`` in ``[0, ndim + extra)``, counting negative values from the end."""
    size = ndim + extra
    if not -size <= axis < size:
        raise ctx.error(f"axis {axis} is out of range for a {ndim}-D input")
    return axis + size if axis < 0 else axis


def numpy_dtype(ctx: OpContext, data_type: int) -> np.dtype:
    """The numpy dtype of a Caffe2 ``TensorProto.DataType`` value."""
    dtype = NUMPY_DTYPES.get(data_type)
    if dtype is None:
        raise ctx.unsupported(
            f"data type {data_type_name(data_type)} is not supported by the executor"
        )
    return dtype
