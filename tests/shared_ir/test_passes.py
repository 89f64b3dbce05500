"""The common pass pipeline: what onnxscript's optimizer may do, and what happens when it fails."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from unframe.shared_ir import passes

OPSET = 18


def _run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _model_with_a_broken_call() -> ir.Model:
    """A valid call of a local function, then a call with more inputs than it declares.

    onnx_ir's InlinePass (the optimizer's first step) inlines the first call, then fails on the
    second: without a copy, the model passed on would be half inlined.
    """
    function = helper.make_function(
        "local", "Twice", ["a"], ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        opset_imports=[helper.make_opsetid("", OPSET)],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Twice", ["x"], ["t"], domain="local", name="good_call"),
         helper.make_node("Twice", ["t", "x"], ["y"], domain="local", name="bad_call")],
        "calls",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    proto = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)],
    )
    return ir.serde.deserialize_model(proto)


def test_a_failing_optimizer_leaves_the_model_untouched_and_says_why(caplog) -> None:
    model = _model_with_a_broken_call()
    with caplog.at_level(logging.DEBUG, logger="unframe"):
        result = passes.optimize(model)
    assert result is model
    assert [(n.domain, n.name) for n in model.graph] == [
        ("local", "good_call"),
        ("local", "bad_call"),
    ]
    assert "Twice" in {f.name for f in model.functions.values()}
    assert any("onnxscript's optimizer failed" in r.getMessage() for r in caplog.records)


def test_a_failing_optimizer_in_place_hands_on_the_reloaded_model() -> None:
    model = _model_with_a_broken_call()
    fresh = _model_with_a_broken_call()
    result = passes.optimize(model, reload=lambda: fresh)
    assert result is fresh
    assert [n.name for n in fresh.graph] == ["good_call", "bad_call"]


def _fusable_model() -> onnx.ModelProto:
    """Relu(Relu(x)), Cast(Cast(.)) and a shape computation: what the pipeline simplifies."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r1"]),
        helper.make_node("Relu", ["r1"], ["r2"]),
        helper.make_node("Cast", ["r2"], ["c1"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["c1"], ["c2"], to=TensorProto.FLOAT),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["c2", "s"], ["y"]),
        helper.make_node("Identity", ["y"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "fusable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def test_optimize_simplifies_and_keeps_values_inputs_and_outputs() -> None:
    proto = _fusable_model()
    x = np.array([[-1.5, 0.0, 2.25], [3.0, -4.0, 5.5]], np.float32)
    (expected,) = _run_ort(proto, {"x": x})
    model = passes.optimize(ir.serde.deserialize_model(proto))
    ops = [n.op_type for n in model.graph]
    assert ops.count("Relu") == 1 and "Shape" not in ops and "Identity" not in ops
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert [v.name for v in model.graph.outputs] == ["out"]
    (actual,) = _run_ort(ir.serde.serialize_model(model), {"x": x})
    np.testing.assert_array_equal(actual, expected)


def test_rewrite_rules_with_several_output_nodes_are_left_out() -> None:
    from onnxscript import rewriter

    kept = passes._linear_rewrite_rules()
    dropped = [r for r in rewriter._DEFAULT_REWRITE_RULES if r not in kept]
    several_outputs = [r for r in dropped if getattr(r, "name", None) not in passes._MIN_MAX_RULES]
    assert several_outputs
    assert all(not r._target_pattern.has_single_output_node for r in several_outputs)
    # The Min/Max fusions are left out by name: each of the four names is still onnxscript's.
    assert {r.name for r in dropped} >= passes._MIN_MAX_RULES
    assert all(r._target_pattern.has_single_output_node for r in kept)


def test_infer_shapes_fills_the_main_graph_and_subgraphs() -> None:
    branch = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0])],
        "branch", [], [helper.make_empty_tensor_value_info("t")],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)],
        "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones((3, 5), np.float32), "w")],
    )  # fmt: skip
    model = ir.serde.deserialize_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    )
    passes.infer_shapes(model)
    matmul, if_node = list(model.graph)
    # By hand: [2, 3] @ [3, 5] and the transpose of [2, 3].
    assert list(matmul.outputs[0].shape) == [2, 5]
    assert matmul.outputs[0].dtype == ir.DataType.FLOAT
    transposed = if_node.attributes["then_branch"].as_graph().outputs[0]
    assert list(transposed.shape) == [3, 2]
    assert list(if_node.outputs[0].shape) == [3, 2]
    # The weights were handed to onnx without their data and are back.
    assert model.graph.initializers["w"].const_value is not None


def test_cli_debug_says_why_the_optimizer_was_skipped(tmp_path) -> None:
    import subprocess
    import sys

    source = tmp_path / "calls.onnx"
    ir.save(_model_with_a_broken_call(), source)
    command = [sys.executable, "-c", "from unframe.cli.main import main; main()"]
    quiet = subprocess.run(
        [*command, "convert", str(source), "-o", str(tmp_path / "a.onnx")],
        capture_output=True,
        text=True,
        check=False,
    )
    debug = subprocess.run(
        [*command, "--debug", "convert", str(source), "-o", str(tmp_path / "b.onnx")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "optimizer failed" not in quiet.stderr
    assert "onnxscript's optimizer failed" in debug.stderr and "InlinePass" in debug.stderr


def test_an_if_branch_returning_an_outer_value_through_identity_stays_valid() -> None:
    """``then = Identity(outer)``: the Identity stays (a branch output must be made inside it);
    the branch's other Identity, of a value made inside, still goes."""
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["doubled"], ["then_out"])],
        "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["doubled"], ["negated"]),
         helper.make_node("Identity", ["negated"], ["else_out"])],
        "else", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["doubled"]),
         helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
         helper.make_node("Greater", ["total", "zero"], ["positive"]),
         helper.make_node("If", ["positive"], ["y"], then_branch=then_branch,
                          else_branch=else_branch)],
        "branches",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model = ir.serde.deserialize_model(proto)
    passes.cleanup_passes()(model)
    written = ir.serde.serialize_model(model)
    onnx.checker.check_model(written, full_check=True)
    branches = {a.name: a.g for a in written.graph.node[-1].attribute}
    assert [n.op_type for n in branches["then_branch"].node] == ["Identity"]
    assert [n.op_type for n in branches["else_branch"].node] == ["Neg"]
    for x in (np.array([1.0, 2.5], np.float32), np.array([-3.0, 0.5], np.float32)):
        np.testing.assert_array_equal(_run_ort(written, {"x": x}), _run_ort(proto, {"x": x}))


def test_two_min_max_pairs_of_one_value_stay_a_valid_model() -> None:
    """Two clamps of one value, as a .tflite LSTM reads back (clip_by_value of one slice):
    onnxscript 0.7.2's Min/Max-to-Clip fusion left the second Clip's bounds in no graph."""
    bounds = [
        numpy_helper.from_array(np.array(value, np.float32), name)
        for name, value in (("hi1", 0.5), ("hi2", 2.0), ("lo", -1.0))
    ]
    nodes = [
        helper.make_node("Min", ["x", "hi1"], ["m1"]),
        helper.make_node("Max", ["m1", "lo"], ["y1"]),
        helper.make_node("Min", ["x", "hi2"], ["m2"]),
        helper.make_node("Max", ["m2", "lo"], ["y2"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_clamps",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [5]) for n in ("y1", "y2")],
        bounds,
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    proto = ir.to_proto(passes.optimize(model))
    onnx.checker.check_model(proto, full_check=True)
    x = np.array([-3.0, -0.5, 0.25, 1.0, 4.0], np.float32)
    y1, y2 = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(y1, [-1.0, -0.5, 0.25, 0.5, 0.5])
    np.testing.assert_array_equal(y2, [-1.0, -0.5, 0.25, 1.0, 2.0])
