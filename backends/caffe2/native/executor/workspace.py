"""A numpy workspace that runs NetDefs op by op, as Caffe2's "simple" net does."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor.registry import (
    CAFFE2_OPS,
    DOMAIN,
    FRAMEWORK,
    OpContext,
)
from unframe.shared_ir.errors import BadInputError, UnframeError, UnsupportedOp, UnsupportedOpsError
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules

#: Ops that run nets of their own (If, ONNXWhile): they get the workspace and write their outputs
#: themselves, as Caffe2 runs subnets in the op's workspace or a scope forwarded to it.
SubnetOp = Callable[["Workspace", OpContext], None]
SUBNET_OPS: OpRegistry[SubnetOp] = OpRegistry(FRAMEWORK, "run")


def subnet_op(*op_types: str) -> Callable[[SubnetOp], SubnetOp]:
    """Registers the decorated function as the implementation of control-flow ``op_types``."""

    def decorate(function: SubnetOp) -> SubnetOp:
        for op_type in op_types:
            if CAFFE2_OPS.supports(op_type, 1, DOMAIN):
                raise ValueError(f"caffe2 executor: op {op_type!r} is registered twice")
            SUBNET_OPS.register(op_type, since=1, domain=DOMAIN)(function)
        return function

    return decorate


@functools.cache
def load_ops() -> None:
    """Imports every op module of ``executor/ops`` (found by pkgutil) so that they register."""
    load_op_modules("unframe.backends.caffe2.native.executor.ops")


def _implemented(op_type: str) -> bool:
    return CAFFE2_OPS.supports(op_type, 1, DOMAIN) or SUBNET_OPS.supports(op_type, 1, DOMAIN)


def unsupported_ops(net: caffe2_pb2.NetDef) -> list[UnsupportedOp]:
    """Every op of ``net`` and of its subnets that the executor lacks, in net order."""
    load_ops()
    missing = []
    for index, op in enumerate(net.op):
        if not _implemented(op.type):
            missing.append(
                UnsupportedOp(
                    node=f"op {index}" + (f" {op.name!r}" if op.name else ""),
                    op_type=op.type,
                    reason="the caffe2 reference executor does not implement it",
                )
            )
        for arg in op.arg:
            for subnet in [arg.n] if arg.HasField("n") else arg.nets:
                missing.extend(unsupported_ops(subnet))
    return missing


class Workspace:
    """Named blobs (numpy arrays) and the nets that read and write them.

    A workspace with a ``parent`` is a scope forwarded to it, as Caffe2's control-flow ops make
    for their subnets: it reads the parent's blobs, and writing a blob that only the parent has
    writes the parent's (Caffe2's ``CreateBlob`` returns an existing blob); new blobs stay local.

    Args:
        seed: seeds the random fill ops (UniformFill, XavierFill...) that have no random_seed.
        parent: the workspace this one is a scope of.
    """

    def __init__(self, seed: int = 0, parent: Workspace | None = None) -> None:
        self.blobs: dict[str, np.ndarray] = {}
        self.seed = seed
        self.parent = parent

    def feed(self, name: str, value: np.ndarray) -> None:
        owner: Workspace = self
        while name not in owner.blobs and owner.parent is not None and owner.parent.has(name):
            owner = owner.parent
        owner.blobs[name] = np.asarray(value)

    def fetch(self, name: str) -> np.ndarray:
        value = self._lookup(name)
        if value is None:
            raise BadInputError(f"the workspace has no blob {name!r}", framework=FRAMEWORK)
        return value

    def has(self, name: str) -> bool:
        return self._lookup(name) is not None

    def _lookup(self, name: str) -> np.ndarray | None:
        scope: Workspace | None = self
        while scope is not None:
            if name in scope.blobs:
                return scope.blobs[name]
            scope = scope.parent
        return None

    def run(self, net: caffe2_pb2.NetDef) -> None:
        """Runs every op of ``net`` in order, after checking that each op type is implemented."""
        missing = unsupported_ops(net)
        if missing:
            raise UnsupportedOpsError(missing, framework=FRAMEWORK, direction="run")
        self._check_sources(net)
        for index, op in enumerate(net.op):
            self.run_op(op, index)

    def _check_sources(self, net: caffe2_pb2.NetDef) -> None:
        """Before any op runs, as Caffe2 creating the net does (NetBase's constructor in
        caffe2/core/net.cc, and each operator's constructor, which looks its inputs up in the
        workspace): every input an op reads exists already or an earlier op writes it, and every
        declared output is written."""
        known: set[str] = set()
        for index, op in enumerate(net.op):
            for name in op.input:
                if name not in known and self._lookup(name) is None:
                    raise _unwritten(op, index, name)
            known.update(op.output)
        for name in net.external_output:
            if name not in known and self._lookup(name) is None:
                raise BadInputError(
                    f"the net declares output {name!r} but no op writes it", framework=FRAMEWORK
                )

    def run_op(self, op: caffe2_pb2.OperatorDef, index: int = 0) -> None:
        """Runs one op, reading its inputs from and writing its outputs to the workspace."""
        load_ops()
        function = CAFFE2_OPS.lookup(op.type, 1, DOMAIN)
        subnet_function = SUBNET_OPS.lookup(op.type, 1, DOMAIN)
        if function is None and subnet_function is None:
            raise UnsupportedOpsError(
                [UnsupportedOp(node=f"op {index}", op_type=op.type)],
                framework=FRAMEWORK,
                direction="run",
            )
        inputs = []
        for name in op.input:
            value = self._lookup(name)
            if value is None:
                raise _unwritten(op, index, name)
            inputs.append(value)
        ctx = OpContext(op, index, inputs, seed=self.seed)
        if function is None:
            assert subnet_function is not None
            subnet_function(self, ctx)
            return
        try:
            outputs = list(function(ctx))
        except UnframeError:
            raise
        except (ValueError, IndexError, TypeError, ArithmeticError) as error:
            # numpy's complaint (shapes that do not broadcast...) becomes one error naming the op.
            raise ctx.error(f"failed: {error}") from error
        if len(outputs) < len(op.output):
            raise ctx.unsupported(
                f"the executor computes {len(outputs)} output(s), the op asks for {len(op.output)}"
            )
        for name, value in zip(op.output, outputs, strict=False):
            self.feed(name, value)


def _unwritten(op: caffe2_pb2.OperatorDef, index: int, name: str) -> BadInputError:
    return BadInputError(
        f"op {index} ({op.type}) reads blob {name!r} before any op or input wrote it",
        framework=FRAMEWORK,
        node=f"op {index}",
        op_type=op.type,
    )


def run_net(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef | None,
    inputs: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Runs ``init_net`` then ``predict_net`` on ``inputs``.

    Returns:
        ``predict_net.external_output`` in order, each a numpy array.

    Raises:
        UnsupportedOpsError: listing every op (either net) that the executor lacks, before running.
        BadInputError: an op reads a blob nobody wrote, or its inputs or arguments are invalid.
    """
    missing = (unsupported_ops(init_net) if init_net is not None else []) + unsupported_ops(
        predict_net
    )
    if missing:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK, direction="run")
    workspace = Workspace(seed=seed)
    if init_net is not None:
        workspace.run(init_net)
    declared = set(predict_net.external_input)
    read = {name for op in predict_net.op for name in op.input}
    for name, value in inputs.items():
        if declared and name not in declared and name not in read:
            raise BadInputError(
                f"input {name!r} is not an input of the net (its inputs: "
                f"{', '.join(n for n in predict_net.external_input if n in read) or 'none'})",
                framework=FRAMEWORK,
            )
        workspace.feed(name, np.asarray(value))
    workspace.run(predict_net)
    outputs = {}
    for name in predict_net.external_output:
        if not workspace.has(name):
            raise BadInputError(
                f"the net declares output {name!r} but no op writes it", framework=FRAMEWORK
            )
        outputs[name] = workspace.fetch(name)
    return outputs
