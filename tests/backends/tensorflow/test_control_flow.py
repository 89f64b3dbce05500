"""If, Loop and Scan in the TensorFlow backend: tf.cond and tf.while_loop against onnxruntime.

Oracle: onnxruntime on the source ONNX model (rtol 1e-4, atol 1e-5), fed the same seeded
inputs at two batch sizes (the batch dim stays dynamic through the control flow).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402
from unframe.shared_ir.errors import UnsupportedOpsError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
F = TensorProto.FLOAT


def _info(name: str, elem: int, dims: list[Any] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _check(proto: onnx.ModelProto, feeds_by_case: list[dict[str, np.ndarray]]) -> Any:
    """Builds the model once and compares it with onnxruntime on every feed."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    built = to_tensorflow(ir.from_proto(proto))
    for feeds in feeds_by_case:
        want = session.run(None, feeds)
        got = run_built(built, feeds)
        for output, expected in zip(proto.graph.output, want, strict=True):
            actual = got[output.name]
            assert actual.dtype == expected.dtype, output.name
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=output.name)
    return built


def test_if_runs_the_branch_the_condition_picks_at_run_time() -> None:
    """Branches read outer values (one a Conv running channels-last) and return two outputs."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    then_branch = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
            helper.make_node("Relu", ["c"], ["a"], name="relu"),
            helper.make_node("ReduceSum", ["a"], ["s"], keepdims=0, name="sum"),
        ],
        "then",
        [],
        [_info("a", F, None), _info("s", F, None)],
    )
    else_branch = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
            helper.make_node("Neg", ["c2"], ["a2"], name="neg"),
            helper.make_node("ReduceMax", ["a2"], ["s2"], keepdims=0, name="max"),
        ],
        "else",
        [],
        [_info("a2", F, None), _info("s2", F, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"),
            helper.make_node("Greater", ["m", "zero"], ["cond"], name="greater"),
            helper.make_node(
                "If",
                ["cond"],
                ["y", "total"],
                then_branch=then_branch,
                else_branch=else_branch,
                name="if",
            ),
        ],  # fmt: skip
        "g",
        [_info("x", F, ["batch", 3, 5, 5])],
        [_info("y", F, ["batch", 4, 5, 5]), _info("total", F, [])],
        initializer=[weight, numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    _check(proto, [{"x": x + 1}, {"x": x - 1}, {"x": x[:1] + 1}])


def test_loop_with_trip_count_condition_carried_values_and_scan_outputs() -> None:
    """Sums x into an accumulator while the step is below M and the sum stays under a bound;
    each step's accumulator is a scan output; the carried 'trail' grows every step."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc_in", "x"], ["acc_out"], name="accumulate"),
            helper.make_node("Cast", ["i"], ["i_f"], to=F, name="step_as_float"),
            helper.make_node("Mul", ["acc_out", "i_f"], ["scaled"], name="scale"),
            helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0, name="total"),
            helper.make_node("Less", ["total", "bound"], ["go"], name="under_bound"),
            helper.make_node("Concat", ["trail_in", "i_f_1d"], ["trail_out"], axis=0, name="grow"),
            helper.make_node("Reshape", ["i_f", "one"], ["i_f_1d"], name="as_1d"),
        ],
        "body",
        [
            _info("i", TensorProto.INT64, []),
            _info("cond", TensorProto.BOOL, []),
            _info("acc_in", F, ["batch", 3]),
            _info("trail_in", F, [None]),
        ],  # fmt: skip
        [
            _info("go", TensorProto.BOOL, []),
            _info("acc_out", F, ["batch", 3]),
            _info("trail_out", F, [None]),
            _info("scaled", F, ["batch", 3]),
        ],  # fmt: skip
    )
    # Reshape comes after Concat in the list above: sort as onnx requires.
    nodes = list(body.node)
    body.ClearField("node")
    body.node.extend([nodes[0], nodes[1], nodes[6], *nodes[2:6]])
    graph = helper.make_graph(
        [
            helper.make_node(
                "Loop",
                ["M", "start", "acc0", "trail0"],
                ["acc", "trail", "steps"],
                body=body,
                name="loop",
            )
        ],  # fmt: skip
        "g",
        [
            _info("M", TensorProto.INT64, []),
            _info("start", TensorProto.BOOL, []),
            _info("x", F, ["batch", 3]),
            _info("acc0", F, ["batch", 3]),
        ],  # fmt: skip
        [
            _info("acc", F, ["batch", 3]),
            _info("trail", F, [None]),
            _info("steps", F, [None, "batch", 3]),
        ],  # fmt: skip
        initializer=[
            numpy_helper.from_array(np.array(6.0, np.float32), "bound"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.zeros(0, np.float32), "trail0"),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(1)
    cases = []
    for batch, trips in ((2, 5), (3, 2)):
        cases.append(
            {
                "M": np.array(trips, np.int64),
                "start": np.array(True),
                "x": rng.random((batch, 3)).astype(np.float32),
                "acc0": np.zeros((batch, 3), np.float32),
            }
        )
    _check(proto, cases)


def test_scan_over_axes_and_directions_with_state() -> None:
    """A cumulative sum along axis 1 read backwards, output stacked on axis 1 reversed, and a
    second scan output stacked on the last axis."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"], name="add"),
            helper.make_node("Mul", ["s_out", "x_t"], ["prod"], name="mul"),
        ],
        "body",
        [_info("s_in", F, ["batch", 4]), _info("x_t", F, ["batch", 4])],
        [
            _info("s_out", F, ["batch", 4]),
            _info("s_copy", F, ["batch", 4]),
            _info("prod", F, ["batch", 4]),
        ],  # fmt: skip
    )
    body.node.append(helper.make_node("Identity", ["s_out"], ["s_copy"], name="copy"))
    graph = helper.make_graph(
        [
            helper.make_node(
                "Scan",
                ["s0", "xs"],
                ["s", "cumulative", "products"],
                body=body,
                num_scan_inputs=1,
                scan_input_axes=[1],
                scan_input_directions=[1],
                scan_output_axes=[1, -1],
                scan_output_directions=[1, 0],
                name="scan",
            )
        ],  # fmt: skip
        "g",
        [_info("s0", F, ["batch", 4]), _info("xs", F, ["batch", "time", 4])],
        [
            _info("s", F, ["batch", 4]),
            _info("cumulative", F, ["batch", "time", 4]),
            _info("products", F, ["batch", 4, "time"]),
        ],  # fmt: skip
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    rng = np.random.default_rng(2)
    _check(
        proto,
        [
            {
                "s0": rng.random((b, 4)).astype(np.float32),
                "xs": rng.random((b, t, 4)).astype(np.float32),
            }  # fmt: skip
            for b, t in ((2, 5), (1, 3))
        ],
    )


def test_opset8_scan_runs_once_per_batch_entry_with_a_reversed_input() -> None:
    """Scan-8: a batch axis on every input, sequence_lens left out, the second scan input read
    backwards; the final state and the scan output stacked per batch entry."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["summed"], name="add"),
         helper.make_node("Mul", ["summed", "r_t"], ["s_out"], name="mul"),
         helper.make_node("Sub", ["s_out", "r_t"], ["step_out"], name="sub")],
        "body",
        [_info("s_in", F, [3]), _info("x_t", F, [3]), _info("r_t", F, [3])],
        [_info("s_out", F, [3]), _info("step_out", F, [3])],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Scan", ["", "s0", "xs", "rs"], ["s", "steps"], body=body,
                          num_scan_inputs=2, directions=[0, 1], name="scan")],
        "g",
        [_info("s0", F, ["batch", 3]), _info("xs", F, ["batch", "time", 3]),
         _info("rs", F, ["batch", "time", 3])],
        [_info("s", F, ["batch", 3]), _info("steps", F, ["batch", "time", 3])],
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    rng = np.random.default_rng(4)
    _check(
        proto,
        [
            {name: rng.random(shape).astype(np.float32)
             for name, shape in (("s0", (b, 3)), ("xs", (b, t, 3)), ("rs", (b, t, 3)))}
            for b, t in ((2, 4), (3, 1))
        ],
    )  # fmt: skip


def test_a_refusal_inside_a_body_names_the_body_node() -> None:
    body = helper.make_graph(
        [helper.make_node("Unknown", ["x"], ["y"], name="inner", domain="com.example")],
        "then",
        [],
        [_info("y", F, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["z"], name="neg")], "else", [], [_info("z", F, None)]
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["out"], then_branch=body, else_branch=other, name="if")],
        "g",
        [_info("c", TensorProto.BOOL, []), _info("x", F, [2])],
        [_info("out", F, [2])],
    )
    imports = [helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]
    model = ir.from_proto(helper.make_model(graph, opset_imports=imports))
    with pytest.raises(UnsupportedOpsError) as raised:
        to_tensorflow(model)
    assert [(op.node, op.op_type) for op in raised.value.ops] == [("inner", "Unknown")]
