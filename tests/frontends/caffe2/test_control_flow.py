"""Caffe2 If and ONNXWhile imported as ONNX If and Loop: onnxruntime on the imported model
against hand-computed values and the executor, and ONNX -> Caffe2 -> ONNX round trips."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from netdef_builders import compare, model, op

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.netdef import Caffe2Model
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import UnsupportedOpsError

from helpers import assert_same_outputs

ort = pytest.importorskip("onnxruntime")


def _net(
    ops: list[caffe2_pb2.OperatorDef],
    inputs: list[str] = (),
    outputs: list[str] = (),  # type: ignore[assignment]
) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(op=ops, external_input=list(inputs), external_output=list(outputs))


def _with_nets(
    operator: caffe2_pb2.OperatorDef, **nets: caffe2_pb2.NetDef
) -> caffe2_pb2.OperatorDef:
    for name, net in nets.items():
        operator.arg.add(name=name, n=net)
    return operator


def _onnxruntime(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return [
        np.asarray(v) for v in session.run(None, {k: v for k, v in feeds.items() if k in names})
    ]


def _import(c2: Caffe2Model) -> onnx.ModelProto:
    proto = ir.to_proto(import_caffe2(c2))
    onnx.checker.check_model(proto, full_check=True)
    return proto


# -- If ----------------------------------------------------------------------------------------


def _if_model() -> Caffe2Model:
    """y = x + w if c else x * w; the branches read x and the weight w by name."""
    branch_if = _with_nets(
        op("If", ["c", "x", "w"], ["y"]),
        then_net=_net([op("Add", ["x", "w"], ["y"])], ["x", "w"], ["y"]),
        else_net=_net([op("Mul", ["x", "w"], ["y"])], ["x", "w"], ["y"]),
    )
    c2 = model([branch_if], {"w": np.array([3.0, 4.0], np.float32)}, {"x": [2]}, ["y"])
    c2.value_info["c"] = (onnx.TensorProto.BOOL, [1])
    c2.predict_net.external_input.insert(0, "c")
    return c2


@pytest.mark.parametrize(("condition", "expected"), [(True, [4.0, 6.0]), (False, [3.0, 8.0])])
def test_if_becomes_an_onnx_if(condition: bool, expected: list[float]) -> None:
    feeds = {"c": np.array([condition]), "x": np.array([1.0, 2.0], np.float32)}
    imported = compare(_if_model(), feeds)
    assert [node.op_type for node in imported.graph] == ["If"]
    (actual,) = _onnxruntime(ir.to_proto(imported), feeds)
    np.testing.assert_array_equal(actual, np.array(expected, np.float32))


def test_if_without_else_net_keeps_the_outputs_it_had() -> None:
    ops = [
        op("Copy", ["x"], ["y"]),
        _with_nets(op("If", ["c", "x"], ["y"]), then_net=_net([op("Relu", ["x"], ["y"])])),
        op("Scale", ["y"], ["z"], scale=2.0),
    ]
    c2 = model(ops, {}, {"c": [], "x": [3]}, ["z"])
    c2.value_info["c"] = (onnx.TensorProto.BOOL, [])
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    for condition, expected in ((True, [0.0, 1.0, 4.0]), (False, [-2.0, 1.0, 4.0])):
        (actual,) = _onnxruntime(_import(c2), {"c": np.array(condition), "x": x})
        np.testing.assert_array_equal(actual, np.array(expected, np.float32))


def test_if_without_else_net_and_no_earlier_output_is_refused() -> None:
    ops = [_with_nets(op("If", ["c", "x"], ["y"]), then_net=_net([op("Relu", ["x"], ["y"])]))]
    c2 = model(ops, {}, {"c": [1], "x": [3]}, ["y"])
    with pytest.raises(UnsupportedOpsError) as caught:
        import_caffe2(c2)
    ((node, op_type, reason),) = [(o.node, o.op_type, o.reason) for o in caught.value.ops]
    assert (node, op_type) == ("op 0", "If")
    assert "else_net" in reason


def test_missing_converters_inside_subnets_are_listed() -> None:
    ops = [_with_nets(op("If", ["c", "x"], ["y"]), then_net=_net([op("NoSuchOp", ["x"], ["y"])]))]
    with pytest.raises(UnsupportedOpsError, match="NoSuchOp"):
        import_caffe2(model(ops, {}, {"c": [1], "x": [3]}, ["y"]))


# -- ONNXWhile ---------------------------------------------------------------------------------


def _while_model(has_cond: int) -> Caffe2Model:
    """acc += 2 * i per trip; the body's condition is acc < 5; acc is also scanned."""
    body_ops = [
        op("Cast", ["i"], ["i_f"], to=caffe2_pb2.TensorProto.FLOAT),
        op("Mul", ["i_f", "step"], ["inc"]),
        op("Add", ["acc", "inc"], ["acc_next"]),
        op("LT", ["acc_next", "limit"], ["cond_next"]),
    ]
    body = _net(
        body_ops, ["i", "cond", "acc", "step", "limit"], ["cond_next", "acc_next", "acc_next"]
    )
    loop = _with_nets(
        op(
            "ONNXWhile", ["m", "c", "acc0", "step", "limit"], ["acc_final", "acc_scan"],
            has_trip_count=1, has_cond=has_cond, save_scopes=0, disable_scopes=0,
            num_loop_carried_deps=1,
        ),
        body=body,
    )  # fmt: skip
    weights = {"step": np.array([2.0], np.float32), "limit": np.array([5.0], np.float32)}
    c2 = model([loop], weights, {"acc0": [1]}, ["acc_final", "acc_scan"])
    c2.predict_net.external_input.extend(["m", "c"])
    c2.value_info["m"] = (onnx.TensorProto.INT64, [])
    c2.value_info["c"] = (onnx.TensorProto.BOOL, [1])
    return c2


@pytest.mark.parametrize(
    ("has_cond", "final", "scan"),
    [(1, 7.0, [1.0, 3.0, 7.0]), (0, 13.0, [1.0, 3.0, 7.0, 13.0])],
    ids=["condition-ends", "condition-ignored"],
)
def test_onnx_while_becomes_an_onnx_loop(has_cond: int, final: float, scan: list[float]) -> None:
    # acc after each trip: 1 + 0, + 2, + 4, + 6 -> 1, 3, 7, 13; four trips at most.
    feeds = {
        "m": np.array(4, np.int64),
        "c": np.array([True]),
        "acc0": np.array([1.0], np.float32),
    }
    imported = compare(_while_model(has_cond), feeds)
    assert [node.op_type for node in imported.graph] == ["Loop"]
    acc_final, acc_scan = _onnxruntime(ir.to_proto(imported), feeds)
    np.testing.assert_array_equal(acc_final, [final])
    np.testing.assert_array_equal(acc_scan, np.array(scan, np.float32).reshape(-1, 1))


# -- ONNX -> Caffe2 -> ONNX ---------------------------------------------------------------------


def _round_trip(source: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    nets = export_model(ir.from_proto(source))
    back = _import(Caffe2Model(nets.predict_net, nets.init_net, nets.value_info))
    expected = _onnxruntime(source, feeds)
    actual = _onnxruntime(back, feeds)
    assert_same_outputs(actual, expected)
    return back


def _export_tests() -> object:
    import importlib.util
    import sys
    from pathlib import Path

    name = "unframe_tests_caffe2_export_control_flow"
    if name not in sys.modules:
        path = Path(__file__).parents[2] / "backends" / "caffe2_export" / "test_control_flow.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_onnx_if_round_trips(sign: float) -> None:
    source = _export_tests()._if_model()  # type: ignore[attr-defined]
    back = _round_trip(source, {"x": np.full((2, 3), sign, np.float32)})
    assert [node.op_type for node in back.graph.node][-1] == "If"


@pytest.mark.parametrize(
    ("trip_count", "with_trip_count", "with_cond"),
    [(3, True, True), (50, True, True), (6, True, False), (0, False, True)],
)
def test_onnx_loop_round_trips(trip_count: int, with_trip_count: bool, with_cond: bool) -> None:
    tests = _export_tests()
    source = tests._loop_model(with_trip_count, with_cond)  # type: ignore[attr-defined]
    back = _round_trip(source, tests._loop_feeds(trip_count, True))  # type: ignore[attr-defined]
    assert any(node.op_type == "Loop" for node in back.graph.node)


def test_if_nested_in_a_loop_round_trips() -> None:
    tests = _export_tests()
    back = _round_trip(tests._nested_model(), tests.NESTED_FEEDS)  # type: ignore[attr-defined]
    (loop,) = [node for node in back.graph.node if node.op_type == "Loop"]
    body = loop.attribute[0].g
    assert any(node.op_type == "If" for node in body.node)


@pytest.mark.parametrize(("in_reversed", "out_axis", "out_reversed"), [(0, 0, 0), (1, 1, 1)])
def test_onnx_scan_round_trips_as_a_loop(
    in_reversed: int, out_axis: int, out_reversed: int
) -> None:
    source = _export_tests()._scan_model(in_reversed, out_axis, out_reversed)  # type: ignore[attr-defined]
    feeds = {
        "init": np.array([0.5, 0.0, -1.0], np.float32),
        "x": np.arange(12, dtype=np.float32).reshape(4, 3),
    }
    back = _round_trip(source, feeds)
    assert any(node.op_type == "Loop" for node in back.graph.node)
