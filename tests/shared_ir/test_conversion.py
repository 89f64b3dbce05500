"""The shared conversion loop: scan first, convert in order, collect refusals, wrap bugs."""

from __future__ import annotations

import onnx
import onnx_ir as ir
import pytest

from unframe.shared_ir.conversion import make_attribute, onnx_loop, schema_default
from unframe.shared_ir.errors import (
    BadInputError,
    ExitCode,
    InternalError,
    UnsupportedError,
    UnsupportedOpsError,
)


def _chain_model() -> ir.Model:
    """x -> Relu(a) -> Neg(b) -> Abs(c) -> y, and x -> Exp(d) -> z: two independent branches."""
    nodes = [
        onnx.helper.make_node("Relu", ["x"], ["r"], name="a"),
        onnx.helper.make_node("Neg", ["r"], ["n"], name="b"),
        onnx.helper.make_node("Abs", ["n"], ["y"], name="c"),
        onnx.helper.make_node("Exp", ["x"], ["z"], name="d"),
    ]
    info = [onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, [2]) for v in "xyz"]
    graph = onnx.helper.make_graph(nodes, "g", [info[0]], info[1:])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    return ir.serde.deserialize_model(proto)


def test_scan_lists_every_node_without_a_converter_with_its_opset() -> None:
    model = _chain_model()
    loop = onnx_loop("toy", "export", dict(model.opset_imports))
    missing = loop.scan(model.graph, lambda node: node.op_type in {"Relu", "Exp"})
    assert [(op.node, op.op_type, op.opset) for op in missing] == [
        ("b", "Neg", 17),
        ("c", "Abs", 17),
    ]
    with pytest.raises(UnsupportedOpsError) as raised:
        loop.check_supported(model.graph, lambda node: node.op_type in {"Relu", "Exp"})
    assert raised.value.exit_code == ExitCode.UNSUPPORTED
    assert "2 node(s)" in str(raised.value)


def test_a_refusal_skips_its_dependents_and_the_other_branch_still_converts() -> None:
    model = _chain_model()
    converted: list[str] = []

    def convert(node: ir.Node) -> None:
        if node.op_type == "Neg":
            raise UnsupportedError("negation of this kind is not expressible")
        converted.append(node.name or "")

    loop = onnx_loop("toy", "export", dict(model.opset_imports))
    failures = loop.run(model.graph, convert)
    # c reads b's output: skipped, not reported a second time; d is on another branch.
    assert converted == ["a", "d"]
    assert [(f.node, f.op_type, f.reason) for f in failures] == [
        ("b", "Neg", "negation of this kind is not expressible")
    ]
    with pytest.raises(UnsupportedOpsError):
        loop.finish(failures)


def test_a_bug_in_a_converter_is_an_internal_error_naming_the_node() -> None:
    model = _chain_model()

    def convert(node: ir.Node) -> None:
        if node.op_type == "Abs":
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    loop = onnx_loop("toy", "export", dict(model.opset_imports), path="m.onnx")
    with pytest.raises(InternalError) as raised:
        loop.convert(list(model.graph), convert)
    error = raised.value
    assert error.exit_code == ExitCode.INTERNAL == 5
    assert (error.node, error.op_type, error.opset) == ("c", "Abs", 17)
    assert "TypeError" in str(error) and "not in your model" in str(error)
    assert isinstance(error.__cause__, TypeError)


def test_bad_input_stops_at_once() -> None:
    model = _chain_model()
    seen: list[str] = []

    def convert(node: ir.Node) -> None:
        seen.append(node.name or "")
        if node.name == "a":
            raise BadInputError("attribute 'alpha' is a string")

    loop = onnx_loop("toy", "export", dict(model.opset_imports))
    with pytest.raises(BadInputError):
        loop.run(model.graph, convert)
    assert seen == ["a"]


def test_nested_refusals_from_a_subgraph_loop_are_kept_as_they_are() -> None:
    model = _chain_model()
    inner = onnx_loop("toy", "export", {"": 17})

    def convert(node: ir.Node) -> None:
        if node.name == "d":
            raise inner.unsupported(inner.scan(model.graph, lambda n: n.op_type != "Abs"))

    failures = onnx_loop("toy", "export", {"": 17}).run(model.graph, convert)
    assert [(f.node, f.op_type) for f in failures] == [("c", "Abs")]


def test_schema_default_reads_onnx_schemas() -> None:
    leaky = ir.Node("", "LeakyRelu", [], num_outputs=1)
    assert schema_default(leaky, 16, "alpha") == pytest.approx(0.01)
    conv = ir.Node("", "Conv", [], num_outputs=1)
    assert schema_default(conv, 11, "auto_pad") == "NOTSET"  # bytes in the schema, str here
    assert schema_default(conv, 11, "kernel_shape") is None  # no default: inferred or required
    custom = ir.Node("example.com", "Mine", [], num_outputs=1)
    assert schema_default(custom, 1, "anything") is None


def test_make_attribute_types_plain_values() -> None:
    assert make_attribute("n", 3).type == ir.AttributeType.INT
    assert make_attribute("flag", True).value == 1
    assert make_attribute("x", 0.5).type == ir.AttributeType.FLOAT
    assert make_attribute("mode", "linear").value == "linear"
    assert make_attribute("axes", [0, 2]).type == ir.AttributeType.INTS
    assert make_attribute("scales", [1, 2.5]).type == ir.AttributeType.FLOATS
    assert make_attribute("names", ["a", "b"]).type == ir.AttributeType.STRINGS
