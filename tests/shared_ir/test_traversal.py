"""Walking subgraphs: every node and value of an If whose branches hold nodes of their own."""

from __future__ import annotations

import onnx
import onnx_ir as ir

from unframe.shared_ir.traversal import all_values, iter_nodes


def _model() -> ir.Model:
    make = onnx.helper
    then_graph = make.make_graph(
        [make.make_node("Neg", ["x"], ["t"], name="neg")], "then", [],
        [make.make_tensor_value_info("t", onnx.TensorProto.FLOAT, [2])],
    )  # fmt: skip
    else_graph = make.make_graph(
        [make.make_node("Abs", ["x"], ["e"], name="abs")], "else", [],
        [make.make_tensor_value_info("e", onnx.TensorProto.FLOAT, [2])],
        [make.make_tensor("k", onnx.TensorProto.FLOAT, [1], [2.0])],
    )  # fmt: skip
    nodes = [
        make.make_node("Relu", ["x"], ["r"], name="relu"),
        make.make_node(
            "If", ["c"], ["y"], name="if", then_branch=then_graph, else_branch=else_graph
        ),
    ]
    graph = make.make_graph(
        nodes, "g",
        [make.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2]),
         make.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])],
        [make.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
    )  # fmt: skip
    return ir.serde.deserialize_model(make.make_model(graph))


def test_every_node_of_every_branch_in_depth_first_order() -> None:
    # Branches in the If's attribute order (else_branch, then_branch: onnx sorts them by name).
    assert [node.name for node in iter_nodes(_model().graph)] == ["relu", "if", "abs", "neg"]


def test_every_value_of_the_graph_and_its_branches() -> None:
    graph = _model().graph
    assert [value.name for value in all_values(graph)] == ["x", "c", "r", "y", "k", "e", "t"]
    assert [value.name for value in all_values(graph, nested=False)] == ["x", "c", "r", "y"]
