"""The op registry: opset rounding to since_version, duplicates, bounds, the all-at-once scan."""

from __future__ import annotations

import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.shared_ir.op_registry import OpRegistry, schema_since_version
from unframe.shared_ir.traversal import iter_nodes

from helpers import as_ir, tiny_model


def make_registry() -> OpRegistry:
    ops: OpRegistry = OpRegistry("test", "export")

    @ops.register("Squeeze", since=1)
    def squeeze_v1(node, ctx):
        return "v1"

    @ops.register("Squeeze", since=13)
    def squeeze_v13(node, ctx):
        return "v13"

    @ops.register("Relu", since=6, until=6)
    def relu_v6(node, ctx):
        return "relu6"

    return ops


def test_lookup_rounds_the_opset_down_to_the_schema_since_version():
    ops = make_registry()
    # onnx: Squeeze changed at 11 (negative axes) and 13 (axes as input).
    assert schema_since_version("Squeeze", 12) == 11
    assert ops.lookup("Squeeze", 12).__name__ == "squeeze_v1"
    assert ops.lookup("Squeeze", 13).__name__ == "squeeze_v13"
    assert ops.lookup("Squeeze", 28).__name__ == "squeeze_v13"


def test_until_bounds_the_versions_a_converter_claims():
    ops = make_registry()
    assert ops.lookup("Relu", 12) is not None  # Relu's schema at 12 is still the one since 6
    assert schema_since_version("Relu", 13) == 13
    assert ops.lookup("Relu", 13) is None  # Relu-13 (bfloat16) is not claimed by relu_v6


def test_registering_the_same_version_twice_raises():
    ops = make_registry()
    with pytest.raises(ValueError, match="twice"):
        ops.register("Squeeze", since=13)(lambda node, ctx: None)


def test_unsupported_nodes_lists_every_node_including_subgraphs():
    ops = make_registry()
    branch = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["z"], name="inner_sigmoid")],
        "then",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
    )
    model = tiny_model(("Tanh", "Tanh", "Relu"), opset=13)
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    model.graph.input.append(cond)
    model.graph.node.append(
        helper.make_node("If", ["c"], ["w"], name="branchy", then_branch=branch, else_branch=branch)
    )
    model.graph.output.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, ["batch", 3]))
    ir_model = as_ir(model)
    missing = ops.unsupported_nodes(ir_model)
    assert [(m.node, m.op_type) for m in missing] == [
        ("tanh_0", "Tanh"),
        ("tanh_1", "Tanh"),
        ("relu_2", "Relu"),  # relu_v6 is bounded to 6; this model is at 13
        ("branchy", "If"),
        ("inner_sigmoid", "Sigmoid"),
        ("inner_sigmoid", "Sigmoid"),
    ]
    assert all(m.opset == 13 for m in missing)
    assert sum(1 for _ in iter_nodes(ir_model.graph)) == 6  # 4 + If's two branches


def test_custom_domain_uses_its_own_opset():
    ops: OpRegistry = OpRegistry("test", "export")
    ops.register("Fancy", since=1, domain="com.example")(lambda n, c: None)
    model = ir.Model(
        ir.Graph([], [], nodes=[], opset_imports={"": 18, "com.example": 1}), ir_version=10
    )
    assert ops.lookup("Fancy", 1, "com.example") is not None
    assert ops.lookup("Fancy", 1) is None
    assert ops.unsupported_nodes(model) == []
