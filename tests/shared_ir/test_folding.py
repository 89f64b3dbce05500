"""FoldConstantsPass: values checked against onnxruntime on the unfolded graph, limits, names."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from unframe.shared_ir.folding import FOLD_SIZE_LIMIT, FOLDABLE_OPS, FoldConstantsPass

OPSET = 18


def _run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _one_node(op: str, inputs: list[np.ndarray | None], **attrs: Any) -> onnx.ModelProto:
    """``y = op(c0, c1, ...)`` with every input an initializer (a constant, not a graph input)."""
    names = [f"c{i}" if a is not None else "" for i, a in enumerate(inputs)]
    initializers = [
        numpy_helper.from_array(a, n) for a, n in zip(inputs, names, strict=True) if a is not None
    ]
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node], "one", [], [helper.make_empty_tensor_value_info("y")],
        initializer=initializers,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


i64 = np.int64
CASES: dict[str, tuple[str, list[np.ndarray | None], dict[str, Any]]] = {
    "add_int": ("Add", [np.array([1, 2, 3], i64), np.array(5, i64)], {}),
    "div_int_negative": ("Div", [np.array([-7, 7, -8], i64), np.array([2, -2, 3], i64)], {}),
    "mod_negative": ("Mod", [np.array([-7, 7, 5], i64), np.array([3, -3, 3], i64)], {}),
    "mul_float": ("Mul", [np.array([0.5, 2.0], np.float32), np.array([3.0], np.float32)], {}),
    "cast_to_int": ("Cast", [np.array([1.7, -1.7, 2.5], np.float32)], {"to": TensorProto.INT64}),
    "concat": ("Concat", [np.array([1], i64), np.array([-1, 4], i64)], {"axis": 0}),
    "gather": ("Gather", [np.array([2, 3, 4, 5], i64), np.array(1, i64)], {"axis": 0}),
    "gather_negative_index": ("Gather", [np.array([2, 3, 4, 5], i64), np.array([-1], i64)], {}),
    "slice": (
        "Slice",
        [
            np.arange(10, dtype=i64),
            np.array([1], i64),
            np.array([-1], i64),
            None,
            np.array([3], i64),
        ],
        {},
    ),  # fmt: skip
    "squeeze": ("Squeeze", [np.array([[7]], i64), np.array([0], i64)], {}),
    "unsqueeze": ("Unsqueeze", [np.array(7, i64), np.array([0], i64)], {}),
    "reshape_zero": (
        "Reshape",
        [np.arange(6, dtype=i64).reshape(2, 3), np.array([0, -1], i64)],
        {},
    ),
    "constant_of_shape": (
        "ConstantOfShape",
        [np.array([2, 3], i64)],
        {"value": numpy_helper.from_array(np.array([1.5], np.float32))},
    ),  # fmt: skip
    "range": ("Range", [np.array(2, i64), np.array(11, i64), np.array(3, i64)], {}),
    "expand": ("Expand", [np.array([[1], [2]], i64), np.array([2, 3], i64)], {}),
    "tile": ("Tile", [np.array([[1, 2]], i64), np.array([2, 2], i64)], {}),
    "where": ("Where", [np.array([True, False]), np.array([1, 2], i64), np.array([9], i64)], {}),
    "reduce_prod": ("ReduceProd", [np.array([[2, 3], [4, 5]], i64), np.array([1], i64)], {}),
    "transpose": ("Transpose", [np.arange(6, dtype=i64).reshape(2, 3)], {"perm": [1, 0]}),
    "sqrt": ("Sqrt", [np.array([4.0, 2.0], np.float32)], {}),
    "clip_missing_min": ("Clip", [np.array([-5, 0, 5], i64), None, np.array(2, i64)], {}),
    "equal": ("Equal", [np.array([1, 2], i64), np.array([1, 3], i64)], {}),
    "max": ("Max", [np.array([1, 9], i64), np.array([4, 2], i64), np.array([3], i64)], {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_folded_values_equal_onnxruntime_on_the_unfolded_graph(case: str) -> None:
    op, inputs, attrs = CASES[case]
    proto = _one_node(op, inputs, **attrs)
    expected = _run_ort(proto, {})["y"]
    model = ir.serde.deserialize_model(proto)
    result = FoldConstantsPass()(model)
    assert result.modified
    output = model.graph.outputs[0]
    # A graph output keeps its producer and name; its value becomes known.
    assert output.name == "y" and output.producer() is not None
    assert output.const_value is not None
    folded = output.const_value.numpy()
    assert folded.dtype == expected.dtype
    np.testing.assert_array_equal(folded, expected)


def _shape_arithmetic_model() -> onnx.ModelProto:
    """Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 1) * 2), [-1])) and a Range from Size."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["dim1"], axis=0),
        helper.make_node("Mul", ["dim1", "two"], ["dim1x2"]),
        helper.make_node("Unsqueeze", ["dim1x2", "zero_axis"], ["dim1x2_1d"]),
        helper.make_node("Concat", ["dim1x2_1d", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
        helper.make_node("Size", ["x"], ["count"]),
        helper.make_node("Range", ["zero", "count", "one"], ["positions"]),
        helper.make_node("Add", ["positions", "positions"], ["z"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(a, i64), n)
        for n, a in [("one", 1), ("two", 2), ("zero", 0), ("zero_axis", [0]), ("minus_one", [-1])]
    ]
    graph = helper.make_graph(
        nodes, "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("z", TensorProto.INT64, None)],
        initializer=initializers,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def test_shape_arithmetic_folds_to_initializers_and_runs_as_before() -> None:
    proto = _shape_arithmetic_model()
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    expected = _run_ort(proto, {"x": x})
    model = ir.serde.deserialize_model(proto)
    inputs, outputs = list(model.graph.inputs), list(model.graph.outputs)

    FoldConstantsPass()(model)

    # The Reshape's target is now an initializer a converter reads: [3 * 2, -1], by hand.
    target = model.graph.initializers["target"]
    np.testing.assert_array_equal(target.const_value.numpy(), [6, -1])
    assert [n.op_type for n in model.graph] == ["Reshape", "Add"]
    # Graph inputs and outputs are the same values with the same names.
    assert list(model.graph.inputs) == inputs and [v.name for v in inputs] == ["x"]
    assert list(model.graph.outputs) == outputs and [v.name for v in outputs] == ["y", "z"]
    np.testing.assert_array_equal(model.graph.outputs[1].const_value.numpy(), expected["z"])
    actual = _run_ort(ir.serde.serialize_model(model), {"x": x})
    for name in ("y", "z"):
        np.testing.assert_array_equal(actual[name], expected[name])


def test_shape_of_a_value_with_unknown_dims_is_left() -> None:
    proto = _shape_arithmetic_model()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model = ir.serde.deserialize_model(proto)
    FoldConstantsPass()(model)
    assert model.graph.node(0).op_type == "Shape"
    assert "target" not in model.graph.initializers
    # Size needs every dim too; the Range after it stays.
    assert "Range" in [n.op_type for n in model.graph]


def test_size_limit_is_respected_for_inputs_and_for_generated_outputs() -> None:
    big = np.ones(FOLD_SIZE_LIMIT + 1, np.float32)
    model = ir.serde.deserialize_model(_one_node("Neg", [big]))
    assert not FoldConstantsPass()(model).modified
    assert model.graph.outputs[0].const_value is None

    # A tiny input that would generate a huge tensor is not run at all.
    huge = _one_node("ConstantOfShape", [np.array([100_000, 100_000], i64)])
    model = ir.serde.deserialize_model(huge)
    assert not FoldConstantsPass()(model).modified
    broadcast = _one_node("Add", [np.ones((4096, 1), np.float32), np.ones((1, 4096), np.float32)])
    model = ir.serde.deserialize_model(broadcast)
    assert not FoldConstantsPass()(model).modified

    # The limit is the pass's one parameter.
    model = ir.serde.deserialize_model(_one_node("Neg", [big]))
    assert FoldConstantsPass(size_limit=big.size)(model).modified
    np.testing.assert_array_equal(model.graph.outputs[0].const_value.numpy(), -big)


def test_an_initializer_that_is_also_a_graph_input_is_not_a_constant() -> None:
    proto = _one_node("Add", [np.array([1], i64), np.array([2], i64)])
    proto.graph.input.append(helper.make_tensor_value_info("c0", TensorProto.INT64, [1]))
    model = ir.serde.deserialize_model(proto)
    assert not FoldConstantsPass()(model).modified
    assert [v.name for v in model.graph.inputs] == ["c0"]


def test_ops_outside_the_set_and_other_domains_are_left() -> None:
    a = np.ones((2, 2), np.float32)
    for proto in (_one_node("MatMul", [a, a]), _one_node("Relu", [a])):
        assert proto.graph.node[0].op_type not in FOLDABLE_OPS
        assert not FoldConstantsPass()(ir.serde.deserialize_model(proto)).modified
    custom = _one_node("Add", [a, a])
    custom.graph.node[0].domain = "com.example"
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    assert not FoldConstantsPass()(ir.serde.deserialize_model(custom)).modified


def test_constants_inside_subgraphs_fold_and_the_nodes_stay() -> None:
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value_ints=[2, 3]),
         helper.make_node("ReduceProd", ["k"], ["prod"], keepdims=0),
         helper.make_node("Add", ["prod", "outer"], ["out"])],
        "branch", [], [helper.make_tensor_value_info("out", TensorProto.INT64, None)],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)],
        "with_if",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
        initializer=[numpy_helper.from_array(np.array(10, i64), "outer")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    expected = _run_ort(proto, {"cond": np.array(True)})["y"]
    model = ir.serde.deserialize_model(proto)
    FoldConstantsPass()(model)
    then_branch = model.graph.node(0).attributes["then_branch"].as_graph()
    assert [n.op_type for n in then_branch] == ["Constant", "ReduceProd", "Add"]
    folded = then_branch.outputs[0].const_value
    assert folded is not None
    np.testing.assert_array_equal(folded.numpy(), expected)


def test_a_long_chain_folds_in_one_sweep_touching_each_node_once() -> None:
    length = 3000
    nodes = [helper.make_node("Add", [f"v{i}", "one"], [f"v{i + 1}"]) for i in range(length)]
    graph = helper.make_graph(
        nodes, "chain", [], [helper.make_tensor_value_info(f"v{length}", TensorProto.INT64, None)],
        initializer=[numpy_helper.from_array(np.array(0, i64), "v0"),
                     numpy_helper.from_array(np.array(1, i64), "one")],
    )  # fmt: skip
    model = ir.serde.deserialize_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    )
    fold = FoldConstantsPass()
    fold(model)
    assert fold.visited == length and fold.folded == length
    assert int(model.graph.outputs[0].const_value.numpy()) == length
    # All but the node producing the graph output became initializers.
    assert len(model.graph) == 1


def test_shapes_downstream_of_folded_values_are_inferred_so_a_later_shape_folds() -> None:
    # The split lengths are computed (an Add of constants): inference before the pass cannot
    # know the Split's output shapes, so only after folding the Add can Shape(b) fold.
    nodes = [
        helper.make_node("Add", ["c0", "c1"], ["lengths"]),
        helper.make_node("Split", ["x", "lengths"], ["a", "b"], axis=1),
        helper.make_node("Shape", ["b"], ["s"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    proto = helper.make_model(
        helper.make_graph(
            nodes,
            "split",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
            [helper.make_empty_tensor_value_info("s"), helper.make_empty_tensor_value_info("y")],
            initializer=[
                numpy_helper.from_array(np.array([1, 4], i64), "c0"),
                numpy_helper.from_array(np.array([1, 0], i64), "c1"),
            ],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    expected = _run_ort(proto, {"x": x})
    model = ir.serde.deserialize_model(proto)

    FoldConstantsPass()(model)

    shape = model.graph.outputs[0]
    assert shape.const_value is not None  # a graph output: the node stays, its value known
    np.testing.assert_array_equal(shape.const_value.numpy(), expected["s"])
    np.testing.assert_array_equal(shape.const_value.numpy(), [2, 4])  # by hand
    split = next(n for n in model.graph if n.op_type == "Split")
    assert [list(v.shape) for v in split.outputs] == [[2, 2], [2, 4]]
    actual = _run_ort(ir.serde.serialize_model(model), {"x": x})
    for name in ("s", "y"):
        np.testing.assert_array_equal(actual[name], expected[name])
