"""The executor's If and ONNXWhile on hand-built NetDefs, checked against hand-computed values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import Workspace, run_net, unsupported_ops
from unframe.shared_ir.errors import BadInputError


def _op(op_type: str, inputs: Sequence[str], outputs: Sequence[str]) -> caffe2_pb2.OperatorDef:
    return caffe2_pb2.OperatorDef(type=op_type, input=list(inputs), output=list(outputs))


def _net(
    ops: Sequence[caffe2_pb2.OperatorDef],
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    name: str = "",
) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(
        name=name, op=list(ops), external_input=list(inputs), external_output=list(outputs)
    )


def _if_net() -> caffe2_pb2.NetDef:
    """y = x + w if c else x * w, the branches reading the outer x and w by name."""
    then_net = _net([_op("Add", ["x", "w"], ["y"])], ["x", "w"], ["y"])
    else_net = _net([_op("Mul", ["x", "w"], ["y"])], ["x", "w"], ["y"])
    op = _op("If", ["c", "x", "w"], ["y"])
    op.arg.add(name="then_net", n=then_net)
    op.arg.add(name="else_net", n=else_net)
    return _net([op], ["c", "x", "w"], ["y"])


@pytest.mark.parametrize(("condition", "expected"), [(True, [4.0, 6.0]), (False, [3.0, 8.0])])
def test_if_runs_the_branch_the_condition_picks(condition: bool, expected: list[float]) -> None:
    feeds = {
        "c": np.array(condition),
        "x": np.array([1.0, 2.0], np.float32),
        "w": np.array([3.0, 4.0], np.float32),
    }
    result = run_net(_if_net(), None, feeds)["y"]
    np.testing.assert_array_equal(result, np.array(expected, np.float32))


def test_if_without_else_net_does_nothing_when_false() -> None:
    op = _op("If", ["c"], ["y"])
    op.arg.add(name="then_net", n=_net([_op("Copy", ["x"], ["y"])]))
    workspace = Workspace()
    workspace.feed("c", np.array([False]))
    workspace.feed("x", np.array([5.0], np.float32))
    workspace.run(_net([op]))
    assert not workspace.has("y")
    workspace.feed("c", np.array([True]))
    workspace.run(_net([op]))
    np.testing.assert_array_equal(workspace.fetch("y"), [5.0])


def test_if_needs_a_single_condition_value() -> None:
    with pytest.raises(BadInputError, match="one value"):
        run_net(
            _if_net(),
            None,
            {
                "c": np.array([True, False]),
                "x": np.ones(2, np.float32),
                "w": np.ones(2, np.float32),
            },
        )


def _while(
    body: caffe2_pb2.NetDef,
    inputs: Sequence[str],
    outputs: Sequence[str],
    num_carried: int | None = None,
    **flags: int,
) -> caffe2_pb2.OperatorDef:
    op = _op("ONNXWhile", inputs, outputs)
    op.arg.add(name="body", n=body)
    for name, value in flags.items():
        op.arg.add(name=name, i=value)
    if num_carried is not None:
        op.arg.add(name="num_loop_carried_deps", i=num_carried)
    return op


def _sum_body() -> caffe2_pb2.NetDef:
    """acc += step * i; the condition stays acc < limit; the scan output is acc (after)."""
    ops = [
        _op("Cast", ["i"], ["i_f"]),
        _op("Mul", ["i_f", "step"], ["inc"]),
        _op("Add", ["acc", "inc"], ["acc_next"]),
        _op("LT", ["acc_next", "limit"], ["cond_next"]),
    ]
    ops[0].arg.add(name="to", i=caffe2_pb2.TensorProto.FLOAT)
    return _net(ops, ["i", "cond", "acc", "step", "limit"], ["cond_next", "acc_next", "acc_next"])


def _run_sum(
    trip_count: int, first_condition: bool, limit: float, **flags: int
) -> dict[str, np.ndarray]:
    op = _while(
        _sum_body(),
        ["m", "c", "acc0", "step", "limit"],
        ["acc_final", "acc_scan"],
        num_carried=1,
        **flags,
    )
    net = _net([op], ["m", "c", "acc0", "step", "limit"], ["acc_final", "acc_scan"])
    feeds = {
        "m": np.array(trip_count, np.int64),
        "c": np.array([first_condition]),
        "acc0": np.array([1.0], np.float32),
        "step": np.array([2.0], np.float32),
        "limit": np.array([limit], np.float32),
    }
    return run_net(net, None, feeds)


def test_onnx_while_counts_trips_and_stacks_scan_outputs() -> None:
    # acc: 1 -> 1 + 0 -> 1 + 2 -> 3 + 4 -> 7 + 6 = 13 (i = 0, 1, 2, 3); the condition is ignored.
    result = _run_sum(4, False, 0.0, has_trip_count=1, has_cond=0)
    np.testing.assert_array_equal(result["acc_final"], [13.0])
    np.testing.assert_array_equal(result["acc_scan"], [[1.0], [3.0], [7.0], [13.0]])
    assert result["acc_scan"].shape == (4, 1)


def test_onnx_while_stops_on_the_body_condition() -> None:
    # acc after each trip: 1, 3, 7, 13; acc < 5 holds after trips 1 and 2 only.
    result = _run_sum(100, True, 5.0, has_trip_count=1, has_cond=1)
    np.testing.assert_array_equal(result["acc_final"], [7.0])
    np.testing.assert_array_equal(result["acc_scan"], [[1.0], [3.0], [7.0]])


def test_onnx_while_condition_only_ignores_the_trip_count() -> None:
    result = _run_sum(0, True, 10.0, has_trip_count=0, has_cond=1)
    np.testing.assert_array_equal(result["acc_final"], [13.0])


def test_onnx_while_false_first_condition_runs_no_iteration() -> None:
    result = _run_sum(10, False, 100.0, has_trip_count=1, has_cond=1)
    np.testing.assert_array_equal(result["acc_final"], [1.0])
    # Caffe2 allocates an empty scan output before the first iteration.
    assert result["acc_scan"].shape == (0,)


def test_onnx_while_iteration_and_condition_blobs() -> None:
    """The body sees the iteration as an int64 scalar and the condition as Caffe2 sets it."""
    body = _net(
        [_op("Copy", ["i"], ["i_seen"]), _op("Copy", ["cond"], ["cond_seen"])],
        ["i", "cond"],
        ["cond_seen", "i_seen", "cond_seen"],
    )
    op = _while(body, ["m", "c"], ["i_scan", "cond_scan"], has_trip_count=1, has_cond=1)
    net = _net([op], ["m", "c"], ["i_scan", "cond_scan"])
    result = run_net(net, None, {"m": np.array(3, np.int64), "c": np.array([True])})
    np.testing.assert_array_equal(result["i_scan"], np.array([0, 1, 2], np.int64))
    assert result["cond_scan"].dtype == np.bool_ and result["cond_scan"].shape == (3, 1)


def test_onnx_while_scopes_keep_body_blobs_out_of_the_workspace() -> None:
    for disable_scopes, leaks in ((0, False), (1, True)):
        op = _while(
            _sum_body(),
            ["m", "c", "acc0", "step", "limit"],
            ["acc_final", "acc_scan"],
            num_carried=1,
            has_trip_count=1,
            disable_scopes=disable_scopes,
        )
        workspace = Workspace()
        for name, value in {
            "m": np.array(2, np.int64),
            "c": np.array([True]),
            "acc0": np.array([1.0], np.float32),
            "step": np.array([2.0], np.float32),
            "limit": np.array([0.0], np.float32),
        }.items():
            workspace.feed(name, value)
        workspace.run(_net([op]))
        np.testing.assert_array_equal(workspace.fetch("acc_final"), [3.0])
        assert workspace.has("inc") is leaks


def test_onnx_while_with_saved_scopes_gives_the_same_result() -> None:
    result = _run_sum(4, True, 0.0, has_trip_count=1, save_scopes=1)
    np.testing.assert_array_equal(result["acc_final"], [13.0])


def test_onnx_while_rejects_saved_scopes_without_scopes() -> None:
    with pytest.raises(BadInputError, match="disable_scopes"):
        _run_sum(1, True, 0.0, has_trip_count=1, save_scopes=1, disable_scopes=1)


def test_onnx_while_scan_output_must_keep_its_shape() -> None:
    concat = _op("Concat", ["grow", "grow"], ["grown", "info"])
    concat.arg.add(name="axis", i=0)
    body = _net(
        [concat],
        ["i", "cond", "grow"],
        ["cond", "grown", "grow"],
    )
    op = _while(body, ["m", "c", "g0"], ["g", "scan"], has_trip_count=1)
    net = _net([op], ["m", "c", "g0"], ["g", "scan"])
    feeds = {"m": np.array(3, np.int64), "c": np.array([True]), "g0": np.ones(1, np.float32)}
    with pytest.raises(BadInputError, match="changed shape"):
        run_net(net, None, feeds)


def test_unsupported_ops_are_found_inside_subnets() -> None:
    op = _op("If", ["c"], ["y"])
    op.arg.add(name="then_net", n=_net([_op("NoSuchOp", ["x"], ["y"])]))
    missing = unsupported_ops(_net([op]))
    assert [m.op_type for m in missing] == ["NoSuchOp"]
