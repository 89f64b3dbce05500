"""The PyTorch backend's driver runs the shared loop: every refusal listed at once, bugs located."""

from __future__ import annotations

import onnx
import onnx.helper as oh
import onnx_ir as ir
import pytest

pytest.importorskip("torch")

from unframe.backends.pytorch import to_torch  # noqa: E402
from unframe.shared_ir.errors import ExitCode, UnsupportedOpsError  # noqa: E402

_FLOAT = onnx.TensorProto.FLOAT
_INT = onnx.TensorProto.INT64


def _model(
    nodes: list[onnx.NodeProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto] | None = None,
) -> ir.Model:
    inputs = [
        oh.make_tensor_value_info("a", _INT, [4]),
        oh.make_tensor_value_info("b", _INT, [4]),
    ]
    graph = oh.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    return ir.from_proto(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)]))


def test_every_refused_node_is_listed_once_and_their_dependents_are_not() -> None:
    # Mod's fmod must be 0 or 1 and BitShift's direction LEFT or RIGHT: both converters refuse.
    nodes = [
        oh.make_node("Mod", ["a", "b"], ["m"], name="bad_mod", fmod=2),
        oh.make_node("Neg", ["m"], ["n"], name="after_mod"),
        oh.make_node("Add", ["a", "b"], ["s"], name="fine_add"),
        oh.make_node("BitShift", ["a", "b"], ["t"], name="bad_shift", direction="UP"),
    ]
    outputs = [oh.make_tensor_value_info(v, _INT, [4]) for v in ("n", "s", "t")]
    with pytest.raises(UnsupportedOpsError) as raised:
        to_torch(_model(nodes, outputs))
    error = raised.value
    assert error.exit_code == ExitCode.UNSUPPORTED
    assert [(op.node, op.op_type, op.opset) for op in error.ops] == [
        ("bad_mod", "Mod", 18),
        ("bad_shift", "BitShift", 18),
    ]
    assert "fmod must be 0 or 1, got 2" in error.ops[0].reason
    assert "LEFT or RIGHT, got 'UP'" in error.ops[1].reason


def test_a_refusal_inside_a_branch_is_listed_with_the_outer_ones() -> None:
    then_graph = oh.make_graph(
        [oh.make_node("Mod", ["a", "b"], ["m"], name="bad_mod_in_branch", fmod=3)],
        "then",
        [],
        [oh.make_tensor_value_info("m", _INT, [4])],
    )
    else_graph = oh.make_graph(
        [oh.make_node("Sub", ["a", "b"], ["d"], name="sub_in_branch")],
        "else",
        [],
        [oh.make_tensor_value_info("d", _INT, [4])],
    )
    nodes = [
        oh.make_node("ReduceSum", ["a"], ["total"], name="total", keepdims=0),
        oh.make_node("Greater", ["total", "b0"], ["cond"], name="cond"),
        oh.make_node(
            "If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph
        ),  # fmt: skip
        oh.make_node("BitShift", ["a", "b"], ["t"], name="bad_shift", direction="DOWN"),
    ]
    outputs = [oh.make_tensor_value_info(v, _INT, [4]) for v in ("y", "t")]
    model = _model(nodes, outputs, [oh.make_tensor("b0", _INT, [], [0])])
    with pytest.raises(UnsupportedOpsError) as raised:
        to_torch(model)
    assert [(op.node, op.op_type) for op in raised.value.ops] == [
        ("bad_mod_in_branch", "Mod"),
        ("bad_shift", "BitShift"),
    ]
