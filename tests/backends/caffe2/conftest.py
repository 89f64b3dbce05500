"""Shared test helpers (as fixtures): build one op, run it in a fresh workspace."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import Workspace

ArgValue = int | float | str | bytes | Sequence[int] | Sequence[float]


def make_op(
    op_type: str, num_inputs: int, num_outputs: int = 1, **args: ArgValue
) -> caffe2_pb2.OperatorDef:
    op = caffe2_pb2.OperatorDef(
        type=op_type,
        input=[f"x{i}" for i in range(num_inputs)],
        output=[f"y{i}" for i in range(num_outputs)],
    )
    for name, value in args.items():
        arg = op.arg.add(name=name)
        if isinstance(value, bool | int):
            arg.i = int(value)
        elif isinstance(value, float):
            arg.f = value
        elif isinstance(value, str):
            arg.s = value.encode()
        elif isinstance(value, bytes):
            arg.s = value
        elif all(isinstance(v, int) for v in value):
            arg.ints.extend(int(v) for v in value)
        else:
            arg.floats.extend(float(v) for v in value)
    return op


def run_op(
    op_type: str, *inputs: np.ndarray, num_outputs: int = 1, **args: ArgValue
) -> list[np.ndarray]:
    """Runs one op on ``inputs`` and returns its outputs."""
    op = make_op(op_type, len(inputs), num_outputs, **args)
    workspace = Workspace()
    for i, value in enumerate(inputs):
        workspace.feed(f"x{i}", np.asarray(value))
    workspace.run_op(op, 0)
    return [workspace.fetch(f"y{i}") for i in range(num_outputs)]


def run1(op_type: str, *inputs: np.ndarray, **args: ArgValue) -> np.ndarray:
    return run_op(op_type, *inputs, **args)[0]


@pytest.fixture(name="run_op")
def _run_op_fixture() -> Callable[..., list[np.ndarray]]:
    return run_op


@pytest.fixture(name="run1")
def _run1_fixture() -> Callable[..., np.ndarray]:
    return run1


@pytest.fixture(name="make_op")
def _make_op_fixture() -> Callable[..., caffe2_pb2.OperatorDef]:
    return make_op
