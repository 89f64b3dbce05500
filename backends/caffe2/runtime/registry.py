"""The executor's op registry and the context an op function receives.

An op function takes an :class:`OpContext` and returns its outputs in order; it may return more
outputs than the op declares (the extra ones are dropped) but never fewer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from unframe.backends.caffe2.proto import caffe2_pb2
from unframe.shared_ir.errors import BadInputError, UnsupportedError

FRAMEWORK = "caffe2"

OpFunction = Callable[["OpContext"], Sequence[np.ndarray]]

#: Every registered op type and its function.
CAFFE2_OPS: dict[str, OpFunction] = {}

DataType = caffe2_pb2.TensorProto.DataType

#: Caffe2 TensorProto data types -> numpy dtypes.
NUMPY_DTYPES: dict[int, np.dtype] = {
    DataType.Value("FLOAT"): np.dtype(np.float32),
    DataType.Value("INT32"): np.dtype(np.int32),
    DataType.Value("BYTE"): np.dtype(np.uint8),
    DataType.Value("STRING"): np.dtype(object),
    DataType.Value("BOOL"): np.dtype(np.bool_),
    DataType.Value("UINT8"): np.dtype(np.uint8),
    DataType.Value("INT8"): np.dtype(np.int8),
    DataType.Value("UINT16"): np.dtype(np.uint16),
    DataType.Value("INT16"): np.dtype(np.int16),
    DataType.Value("INT64"): np.dtype(np.int64),
    DataType.Value("FLOAT16"): np.dtype(np.float16),
    DataType.Value("DOUBLE"): np.dtype(np.float64),
}


def caffe2_op(*op_types: str) -> Callable[[OpFunction], OpFunction]:
    """Registers the decorated function as the implementation of ``op_types``.

    Example::

        @caffe2_op("Relu")
        def relu(ctx: OpContext) -> list[np.ndarray]:
            return [np.maximum(ctx.input(0), 0)]
    """

    def decorate(function: OpFunction) -> OpFunction:
        for op_type in op_types:
            if op_type in CAFFE2_OPS:
                raise ValueError(f"caffe2 executor: op {op_type!r} is registered twice")
            CAFFE2_OPS[op_type] = function
        return function

    return decorate


@dataclass
class OpContext:
    """One operator about to run: its definition, position, input arrays and argument readers."""

    op: caffe2_pb2.OperatorDef
    index: int
    inputs: list[np.ndarray]
    seed: int = 0
    _args: dict[str, caffe2_pb2.Argument] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._args = {arg.name: arg for arg in self.op.arg}

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

    # -- arguments ------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._args

    def arg_int(self, name: str, default: int) -> int:
        arg = self._args.get(name)
        if arg is None:
            return default
        if arg.HasField("i"):
            return int(arg.i)
        if arg.HasField("f") and float(arg.f).is_integer():
            return int(arg.f)
        raise self.error(f"argument {name!r} must be an integer, got {_describe(arg)}")

    def arg_float(self, name: str, default: float) -> float:
        arg = self._args.get(name)
        if arg is None:
            return default
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return float(arg.i)
        raise self.error(f"argument {name!r} must be a number, got {_describe(arg)}")

    def arg_str(self, name: str, default: str) -> str:
        arg = self._args.get(name)
        if arg is None:
            return default
        if arg.HasField("s"):
            return arg.s.decode("utf-8", errors="replace")
        raise self.error(f"argument {name!r} must be a string, got {_describe(arg)}")

    def arg_ints(self, name: str, default: Sequence[int] | None = None) -> list[int]:
        arg = self._args.get(name)
        if arg is None:
            return list(default) if default is not None else []
        if arg.ints:
            return [int(v) for v in arg.ints]
        if arg.HasField("i"):
            return [int(arg.i)]
        if arg.floats and all(float(v).is_integer() for v in arg.floats):
            return [int(v) for v in arg.floats]
        # An empty repeated argument is a valid, empty list.
        if not (arg.HasField("f") or arg.HasField("s") or arg.strings):
            return []
        raise self.error(f"argument {name!r} must be a list of integers, got {_describe(arg)}")

    def arg_floats(self, name: str, default: Sequence[float] | None = None) -> list[float]:
        arg = self._args.get(name)
        if arg is None:
            return list(default) if default is not None else []
        if arg.floats:
            return [float(v) for v in arg.floats]
        if arg.ints:
            return [float(v) for v in arg.ints]
        if arg.HasField("f"):
            return [float(arg.f)]
        return []

    def arg(self, name: str) -> caffe2_pb2.Argument | None:
        return self._args.get(name)

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
        name = DataType.Name(data_type) if data_type in DataType.values() else str(data_type)
        raise ctx.unsupported(f"data type {name} is not supported by the executor")
    return dtype


def _describe(arg: caffe2_pb2.Argument) -> str:
    fields = [descriptor.name for descriptor, _ in arg.ListFields() if descriptor.name != "name"]
    return f"an argument with {', '.join(fields) or 'no value'}"
