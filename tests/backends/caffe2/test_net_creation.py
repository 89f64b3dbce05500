"""Caffe2 checks a net's sources when creating it, before any op runs (caffe2/core/net.cc)."""

from __future__ import annotations

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import Workspace, run_net
from unframe.shared_ir.errors import BadInputError


def _net(*ops: caffe2_pb2.OperatorDef, outputs: list[str]) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="t", external_input=["x"], external_output=outputs)
    net.op.extend(ops)
    return net


def test_an_unwritten_input_is_found_before_the_first_op_runs() -> None:
    # Op 0 would fail on its own (Caffe2's Floor is float only); op 1's missing blob comes first.
    ops = [
        caffe2_pb2.OperatorDef(type="Floor", input=["x"], output=["a"]),
        caffe2_pb2.OperatorDef(type="Add", input=["a", "bias"], output=["y"]),
    ]
    with pytest.raises(BadInputError, match=r"op 1 \(Add\) reads blob 'bias'"):
        run_net(_net(*ops, outputs=["y"]), None, {"x": np.ones(2)})


def test_an_unwritten_output_is_found_before_the_first_op_runs() -> None:
    op = caffe2_pb2.OperatorDef(type="Floor", input=["x"], output=["y"])
    with pytest.raises(BadInputError, match="declares output 'z' but no op writes it"):
        run_net(_net(op, outputs=["z"]), None, {"x": np.ones(2)})


def test_a_blob_an_earlier_op_writes_is_known() -> None:
    ops = [
        caffe2_pb2.OperatorDef(type="Floor", input=["x"], output=["a"]),
        caffe2_pb2.OperatorDef(type="Add", input=["a", "a"], output=["y"]),
    ]
    workspace = Workspace()
    workspace.feed("x", np.array([1.5], np.float32))
    workspace.run(_net(*ops, outputs=["y"]))
    assert workspace.fetch("y").tolist() == [2]
