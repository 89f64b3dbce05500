"""ONNX If and Loop through the Caffe2 backend: the NetDef forms, then the executor's results
against onnxruntime running the source model (and torch for the PyTorch models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model, read_model, write_model
from unframe.converters import conformance
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.shared_ir.errors import UnsupportedOpsError

from helpers import assert_same_outputs

ort = pytest.importorskip("onnxruntime")

FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _model(graph: onnx.GraphProto, opset: int = 17) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def _caffe2(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    nets = export_model(ir.from_proto(model))
    return list(run_net(nets.predict_net, nets.init_net, feeds).values())


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    expected = _onnxruntime(model, feeds)
    actual = _caffe2(model, feeds)
    assert_same_outputs(actual, expected)


def _arg(op: caffe2_pb2.OperatorDef, name: str) -> caffe2_pb2.Argument:
    return next(arg for arg in op.arg if arg.name == name)


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


# -- If ----------------------------------------------------------------------------------------


def _if_model() -> onnx.ModelProto:
    """y = relu(x * w + b) if sum(x) > 0 else x - c; w is an outer weight, b and c branch-local
    constants, and both branches name a temporary "t" (sibling subgraphs may reuse names)."""
    then_branch = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "w"], ["t"]),
            _const("b", np.array([0.5, -0.5, 1.0], np.float32)),
            helper.make_node("Add", ["t", "b"], ["t2"]),
            helper.make_node("Relu", ["t2"], ["then_y"]),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("then_y", FLOAT, [2, 3])],
    )
    else_branch = helper.make_graph(
        [
            _const("c", np.array([2.0, 3.0, 4.0], np.float32)),
            helper.make_node("Sub", ["x", "c"], ["t"]),
            helper.make_node("Identity", ["t"], ["else_y"]),
        ],
        "else",
        [],
        [helper.make_tensor_value_info("else_y", FLOAT, [2, 3])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["positive"]),
            helper.make_node(
                "If", ["positive"], ["y"], then_branch=then_branch, else_branch=else_branch
            ),
        ],
        "if_model",
        [helper.make_tensor_value_info("x", FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", FLOAT, [2, 3])],
        initializer=[
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "w"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    return _model(graph)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_if_matches_onnxruntime_on_both_branches(sign: float) -> None:
    x = (sign * np.abs(np.random.default_rng(0).standard_normal((2, 3))) + sign * 0.1).astype(
        np.float32
    )
    _check(_if_model(), {"x": x})


def test_if_is_caffe2s_if_with_then_and_else_nets() -> None:
    nets = export_model(ir.from_proto(_if_model()))
    (if_op,) = [op for op in nets.predict_net.op if op.type == "If"]
    assert if_op.input[0] == "positive"
    # The outer blobs the branches read follow the condition; x and the weight w among them.
    assert {"x", "w"} <= set(if_op.input[1:])
    assert list(if_op.output) == ["y"]
    then_net, else_net = _arg(if_op, "then_net").n, _arg(if_op, "else_net").n
    assert list(then_net.external_output) == ["y"] == list(else_net.external_output)
    assert then_net.op[-1].output[-1] == "y" and else_net.op[-1].output[-1] == "y"
    # Branch constants are weights: filled by the init net, declared by the predict net.
    filled = {blob for op in nets.init_net.op for blob in op.output}
    assert {"w", "b", "c"} <= filled
    assert {"b", "c"} <= set(nets.predict_net.external_input)
    # The two branches' "t" are two blobs.
    then_written = {b for op in then_net.op for b in op.output}
    else_written = {b for op in else_net.op for b in op.output}
    assert not (then_written - {"y"}) & (else_written - {"y"})


# -- Loop --------------------------------------------------------------------------------------


def _loop_model(with_trip_count: bool = True, with_cond: bool = True) -> onnx.ModelProto:
    """acc = acc * decay + x * i per iteration while sum(acc) < limit; scans acc and i."""
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["i_f"], to=FLOAT),
            helper.make_node("Mul", ["x", "i_f"], ["xi"]),
            _const("decay", np.array(0.5, np.float32)),
            helper.make_node("Mul", ["acc", "decay"], ["decayed"]),
            helper.make_node("Add", ["decayed", "xi"], ["acc_out"]),
            helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
            helper.make_node("Less", ["total", "limit"], ["cond_out"]),
            helper.make_node("Identity", ["i"], ["i_scan"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", INT64, []),
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("acc", FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", BOOL, []),
            helper.make_tensor_value_info("acc_out", FLOAT, [3]),
            helper.make_tensor_value_info("acc_out", FLOAT, [3]),
            helper.make_tensor_value_info("i_scan", INT64, []),
        ],
    )
    loop_inputs = ["m" if with_trip_count else "", "go" if with_cond else "", "acc0"]
    graph = helper.make_graph(
        [helper.make_node("Loop", loop_inputs, ["acc_final", "acc_scan", "i_scans"], body=body)],
        "loop_model",
        [
            helper.make_tensor_value_info("x", FLOAT, [3]),
            helper.make_tensor_value_info("m", INT64, []),
            helper.make_tensor_value_info("go", BOOL, []),
            helper.make_tensor_value_info("acc0", FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("acc_final", FLOAT, [3]),
            helper.make_tensor_value_info("acc_scan", FLOAT, [None, 3]),
            helper.make_tensor_value_info("i_scans", INT64, [None]),
        ],
        initializer=[numpy_helper.from_array(np.array(20.0, np.float32), "limit")],
    )
    return _model(graph)


def _loop_feeds(trip_count: int, go: bool) -> dict[str, np.ndarray]:
    return {
        "x": np.array([1.0, 2.0, 0.5], np.float32),
        "m": np.array(trip_count, np.int64),
        "go": np.array(go),
        "acc0": np.array([0.0, 1.0, -1.0], np.float32),
    }


@pytest.mark.parametrize(
    ("trip_count", "go"),
    [(3, True), (50, True), (1, True)],
    ids=["trip-count-ends", "condition-ends", "one-trip"],
)
def test_loop_matches_onnxruntime(trip_count: int, go: bool) -> None:
    _check(_loop_model(), _loop_feeds(trip_count, go))


def test_loop_without_condition_input_still_obeys_the_body_condition() -> None:
    # ONNX's table calls the body's condition ignored here; onnxruntime stops on it (sum(acc) reaches 21.4 on trip 5).
    model = _loop_model(with_cond=False)
    feeds = _loop_feeds(6, True)
    _check(model, feeds)
    (acc_final, acc_scan, i_scans) = _caffe2(model, feeds)
    np.testing.assert_array_equal(i_scans, np.arange(5))
    assert acc_scan.shape == (5, 3) and acc_final.shape == (3,)


def test_loop_without_trip_count_is_a_while_loop() -> None:
    _check(_loop_model(with_trip_count=False), _loop_feeds(0, True))


def test_loop_is_onnx_while_with_a_body_net() -> None:
    nets = export_model(ir.from_proto(_loop_model(with_cond=False)))
    (op,) = [op for op in nets.predict_net.op if op.type == "ONNXWhile"]
    assert list(op.input[:3]) == [
        "m",
        op.input[1],
        "acc0",
    ]
    assert op.input[1] in {b for o in nets.init_net.op for b in o.output}  # no cond: a constant
    assert {"x", "limit"} <= set(op.input[3:])
    assert list(op.output) == ["acc_final", "acc_scan", "i_scans"]
    assert _arg(op, "has_trip_count").i == 1 and _arg(op, "has_cond").i == 1
    assert _arg(op, "num_loop_carried_deps").i == 1
    assert _arg(op, "save_scopes").i == 0 and _arg(op, "disable_scopes").i == 0
    body = _arg(op, "body").n
    assert list(body.external_input[:3]) == ["i", "cond", "acc"]
    assert {"x", "limit"} <= set(body.external_input[3:])
    assert list(body.external_output) == ["cond_out", "acc_out", "acc_out", "i_scan"]


def _nested_model() -> onnx.ModelProto:
    """Each trip adds i to acc or subtracts it, by the parity of i: an If in the loop body."""
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["acc", "i_f"], ["then_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", FLOAT, [2])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Sub", ["acc", "i_f"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", FLOAT, [2])],
    )
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["i_f"], to=FLOAT),
            _const("two", np.array(2, np.int64)),
            _const("zero", np.array(0, np.int64)),
            helper.make_node("Mod", ["i", "two"], ["parity"]),
            helper.make_node("Equal", ["parity", "zero"], ["even"]),
            helper.make_node(
                "If", ["even"], ["acc_out"], then_branch=then_branch, else_branch=else_branch
            ),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", INT64, []),
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("acc", FLOAT, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", BOOL, []),
            helper.make_tensor_value_info("acc_out", FLOAT, [2]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["m", "", "acc0"], ["acc_final"], body=body)],
        "nested",
        [
            helper.make_tensor_value_info("m", INT64, []),
            helper.make_tensor_value_info("acc0", FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("acc_final", FLOAT, [2])],
    )
    return _model(graph)


NESTED_FEEDS = {"m": np.array(5, np.int64), "acc0": np.array([1.0, 10.0], np.float32)}


def test_if_nested_in_a_loop_body() -> None:
    _check(_nested_model(), NESTED_FEEDS)
    # 0 + 2 + 4 added, 1 + 3 subtracted.
    np.testing.assert_array_equal(_caffe2(_nested_model(), NESTED_FEEDS)[0], [3.0, 12.0])


@pytest.mark.parametrize("text", [False, True], ids=["pb", "pbtxt"])
def test_nested_nets_survive_the_model_files(text: bool, tmp_path: Path) -> None:
    nets = export_model(ir.from_proto(_nested_model()))
    write_model(Caffe2Model(nets.predict_net, nets.init_net, nets.value_info), tmp_path, text=text)
    read = read_model(tmp_path)
    (actual,) = run_net(read.predict_net, read.init_net, NESTED_FEEDS).values()
    np.testing.assert_array_equal(actual, [3.0, 12.0])


# -- onnx's node tests and refusals ------------------------------------------------------------

#: onnx node tests with If, Loop or Scan that pass through the backend and the executor.
PASSING_NODE_TESTS = [
    "test_if",
    "test_loop11",
    "test_range_float_type_positive_delta_expanded",
    "test_range_int32_type_negative_delta_expanded",
    "test_scan9_sum",
    "test_scan9_multi_state",
    "test_linear_attention_gated_delta_expanded",
]
#: Sequence- and optional-typed control flow: Caffe2 blobs are tensors.
REFUSED_NODE_TESTS = ["test_if_seq", "test_if_opt", "test_loop13_seq", "test_loop16_seq_none"]


def _node_tests(names: list[str]) -> dict[str, object]:
    import importlib

    import onnx.backend.test.case.node as node_cases

    for module in ("if_", "loop", "rangeop", "scan", "linear_attention"):
        importlib.import_module(f"{node_cases.__name__}.{module}")
    return {case.name: case for case in node_cases._NodeTestCases if case.name in names}


@pytest.mark.parametrize("name", PASSING_NODE_TESTS)
def test_onnx_node_test_passes(name: str) -> None:
    case = _node_tests([name])[name]
    outcome = conformance.run_test(Caffe2Framework(), case)
    assert outcome.status == "pass", outcome.reason


@pytest.mark.parametrize("name", REFUSED_NODE_TESTS)
def test_sequence_typed_control_flow_is_refused(name: str) -> None:
    case = _node_tests([name])[name]
    assert Caffe2Framework().unsupported_nodes(ir.from_proto(case.model))  # type: ignore[attr-defined]


def test_a_failing_body_node_is_reported_with_the_loop() -> None:
    model = _loop_model()
    model.graph.node[0].attribute[0].g.node[1].op_type = "NoSuchOp"
    with pytest.raises(UnsupportedOpsError, match="NoSuchOp"):
        export_model(ir.from_proto(model))


# -- PyTorch models with control flow ------------------------------------------------------------


def _torch_zoo() -> object:
    import importlib.util
    import sys
    from pathlib import Path

    name = "unframe_tests_torch_zoo"
    if name not in sys.modules:
        path = Path(__file__).parents[2] / "models" / "torch_zoo.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_torch_cond_model_keeps_its_if_and_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    from unframe.frontends.pytorch import from_torch

    entry = _torch_zoo().ZOO["cond"]  # type: ignore[attr-defined]
    module = entry.model()
    model = from_torch(module, entry.inputs(2))
    nets = export_model(model)
    assert any(op.type == "If" for op in nets.predict_net.op)
    x = entry.inputs(2, seed=5)[0]
    name = model.graph.inputs[0].name
    for sample in (x.abs() + 0.1, -x.abs() - 0.1):  # one input per branch
        (actual,) = run_net(nets.predict_net, nets.init_net, {name: sample.numpy()}).values()
        with torch.no_grad():
            expected = module(sample).numpy()
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def _halve_until_small() -> object:
    """A scripted module (built here: torch is optional) whose loop count depends on the data."""
    import torch

    class HalveUntilSmall(torch.nn.Module):
        """Halves x while its L1 norm exceeds 1 and adds the number of halvings."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            steps = torch.zeros((), dtype=torch.long)
            while bool(x.abs().sum() > 1.0):
                x = x * 0.5
                steps = steps + 1
            return x + steps.to(x.dtype)

    return torch.jit.script(HalveUntilSmall())


def test_scripted_data_dependent_loop_matches_torch_and_onnxruntime() -> None:
    torch = pytest.importorskip("torch")
    import io
    import warnings

    scripted = _halve_until_small()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            scripted, (torch.randn(2, 3),), buffer, dynamo=False, opset_version=17,
            input_names=["x"],
        )  # fmt: skip
    model = onnx.load_from_string(buffer.getvalue())
    assert any(node.op_type == "Loop" for node in model.graph.node)
    nets = export_model(ir.from_proto(model))
    assert any(op.type == "ONNXWhile" for op in nets.predict_net.op)
    for scale in (0.01, 1.0, 40.0):  # 0, a few, and many trips
        x = (np.random.default_rng(3).standard_normal((2, 3)) * scale).astype(np.float32)
        (actual,) = run_net(nets.predict_net, nets.init_net, {"x": x}).values()
        with torch.no_grad():
            expected = scripted(torch.from_numpy(x)).numpy()  # type: ignore[operator]
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(actual, _onnxruntime(model, {"x": x})[0], rtol=1e-6)


def _rank_test_model() -> onnx.ModelProto:
    """An If on x's rank, known at export time: its untaken branch has a float Mod (fmod=0),
    which Caffe2 cannot express; its outputs' shape feeds a Reshape that needs it."""
    then_branch = helper.make_graph(
        [helper.make_node("Mod", ["x", "x"], ["then_y"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_y", FLOAT, [2, 3])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["else_y"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_y", FLOAT, [2, 3])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Size", ["shape"], ["rank"]),
            helper.make_node("Equal", ["rank", "four"], ["is_4d"]),
            helper.make_node(
                "If", ["is_4d"], ["y"], then_branch=then_branch, else_branch=else_branch
            ),
            helper.make_node("Shape", ["y"], ["y_shape"]),
            helper.make_node("ReduceProd", ["y_shape"], ["count"], keepdims=1),
            helper.make_node("Reshape", ["y", "count"], ["flat"]),
        ],
        "rank_test",
        [helper.make_tensor_value_info("x", FLOAT, [2, 3])],
        [helper.make_tensor_value_info("flat", FLOAT, [6])],
        initializer=[numpy_helper.from_array(np.array(4, np.int64), "four")],
    )
    return _model(graph, opset=17)


def test_if_with_a_condition_known_at_export_is_its_taken_branch() -> None:
    model = _rank_test_model()
    nets = export_model(ir.from_proto(model))
    assert "If" not in {op.type for op in nets.predict_net.op}
    x = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]], np.float32)
    _check(model, {"x": x})
    np.testing.assert_array_equal(_caffe2(model, {"x": x})[0], (x * x).reshape(-1))


def test_a_failing_branch_is_reported_when_the_condition_is_not_known() -> None:
    model = _rank_test_model()
    # The condition now comes from the data: both branches must export.
    model.graph.node[2].input[0] = "x_sum"
    model.graph.node.insert(0, helper.make_node("ReduceSum", ["x"], ["x_sum_f"], keepdims=0))
    model.graph.node.insert(1, helper.make_node("Cast", ["x_sum_f"], ["x_sum"], to=INT64))
    with pytest.raises(UnsupportedOpsError) as raised:
        export_model(ir.from_proto(model))
    (failure,) = raised.value.ops
    assert failure.op_type == "If" and "then_net cannot be exported" in failure.reason
    assert "(Mod)" in failure.reason


# -- Scan --------------------------------------------------------------------------------------


def _scan_model(in_reversed: int, out_axis: int, out_reversed: int) -> onnx.ModelProto:
    """A running sum over the rows of x (shape (4, 3)) and the rows scaled by a weight; the
    body leaves its inputs' shapes out, as onnx's function expansions do."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["sum_in", "row"], ["sum_out"]),
            helper.make_node("Mul", ["row", "w"], ["scaled"]),
            helper.make_node("Identity", ["sum_out"], ["sum_scan"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("sum_in", FLOAT, None),
            helper.make_tensor_value_info("row", FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("sum_out", FLOAT, None),
            helper.make_tensor_value_info("sum_scan", FLOAT, None),
            helper.make_tensor_value_info("scaled", FLOAT, None),
        ],
    )
    scan = helper.make_node(
        "Scan", ["init", "x"], ["total", "sums", "rows"], body=body, num_scan_inputs=1,
        scan_input_directions=[in_reversed], scan_output_axes=[out_axis, 0],
        scan_output_directions=[out_reversed, 0],
    )  # fmt: skip
    sums_shape = [4, 3] if out_axis in (0, -2) else [3, 4]
    graph = helper.make_graph(
        [scan],
        "scan_model",
        [
            helper.make_tensor_value_info("init", FLOAT, [3]),
            helper.make_tensor_value_info("x", FLOAT, [4, 3]),
        ],
        [
            helper.make_tensor_value_info("total", FLOAT, [3]),
            helper.make_tensor_value_info("sums", FLOAT, sums_shape),
            helper.make_tensor_value_info("rows", FLOAT, [4, 3]),
        ],
        initializer=[numpy_helper.from_array(np.array([1.0, -1.0, 2.0], np.float32), "w")],
    )
    return _model(graph, opset=17)


@pytest.mark.parametrize(
    ("in_reversed", "out_axis", "out_reversed"),
    [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -1, 1)],
)
def test_scan_is_an_onnx_while_matching_onnxruntime(
    in_reversed: int, out_axis: int, out_reversed: int
) -> None:
    model = _scan_model(in_reversed, out_axis, out_reversed)
    nets = export_model(ir.from_proto(model))
    (op,) = [op for op in nets.predict_net.op if op.type == "ONNXWhile"]
    assert _arg(op, "num_loop_carried_deps").i == 1
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    feeds = {"init": np.array([0.5, 0.0, -1.0], np.float32), "x": x}
    _check(model, feeds)
    if not (in_reversed or out_reversed or out_axis):
        total, sums, rows = _caffe2(model, feeds)
        np.testing.assert_array_equal(sums, feeds["init"] + np.cumsum(x, axis=0))
        np.testing.assert_array_equal(rows, x * np.array([1.0, -1.0, 2.0], np.float32))
