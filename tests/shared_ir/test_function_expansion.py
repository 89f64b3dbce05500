"""ExpandFunctionsPass: function ops replaced by their ONNX bodies compute what the ops compute.

Oracle: onnxruntime, which runs the original op with its own kernel, against onnxruntime running
the expanded model, on seeded random inputs. The backend is stood in for by a predicate that
converts every op with no function body (and what each test says).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.shared_ir.function_expansion import (
    ExpandFunctionsPass,
    has_function_body,
    unsupported_after_expansion,
)
from unframe.shared_ir.op_registry import OpRegistry
from unframe.shared_ir.traversal import iter_nodes

ort = pytest.importorskip("onnxruntime")


def _plain_ops(domain: str, op_type: str, opset: int) -> bool:
    """A backend that converts exactly the ops ONNX does not define by a function body."""
    return not has_function_body(op_type, opset, domain)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, tuple[int, list[Any]]],
    outputs: list[str],
    opset: int,
    output_types: dict[str, int] | None = None,
) -> onnx.ModelProto:
    """A model of ``nodes``; outputs are float unless ``output_types`` says otherwise."""
    types = output_types or {}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, d) for n, (t, d) in inputs.items()],
        [helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None) for n in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def _expand_and_compare(
    proto: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    converts: Any = _plain_ops,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> ir.Model:
    model = ir.from_proto(proto)
    expansion = ExpandFunctionsPass(converts)
    result = expansion(model)
    assert result.modified and expansion.expanded >= 1, expansion.refused
    opset = _opset(proto)
    left = [n.op_type for n in iter_nodes(model.graph) if not converts(n.domain, n.op_type, opset)]
    assert not left, f"unexpanded: {left}"
    expanded = ir.to_proto(model)
    for want, got in zip(_run(proto, feeds), _run(expanded, feeds), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return model


def _opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _floats(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def test_attention_expands_with_names_prefixed_by_the_node() -> None:
    rng = np.random.default_rng(0)
    node = helper.make_node(
        "Attention", ["Q", "K", "V"], ["Y"], name="attn", q_num_heads=2, kv_num_heads=1
    )
    proto = _model(
        [node],
        {
            "Q": (TensorProto.FLOAT, ["B", 5, 8]),
            "K": (TensorProto.FLOAT, ["B", 3, 4]),
            "V": (TensorProto.FLOAT, ["B", 3, 4]),
        },
        ["Y"],
        23,
    )
    feeds = {"Q": _floats(rng, 2, 5, 8), "K": _floats(rng, 2, 3, 4), "V": _floats(rng, 2, 3, 4)}
    model = _expand_and_compare(proto, feeds)
    names = [n.name or "" for n in iter_nodes(model.graph)]
    assert all(name.startswith("attn/") for name in names), names
    assert "attn/MatMul_0" in names
    # Attention's body holds Softmax, itself a function op: expanded under its own name.
    assert any(name.startswith("attn/Softmax_0/") for name in names)
    assert model.graph.outputs[0].name == "Y"
    internal = [v.name or "" for n in model.graph for v in n.outputs if v.name != "Y"]
    assert all(name.startswith("attn/") for name in internal)


def test_softmax_cross_entropy_loss_with_weights_and_ignore_index() -> None:
    rng = np.random.default_rng(1)
    node = helper.make_node(
        "SoftmaxCrossEntropyLoss", ["scores", "labels", "w"], ["loss", "log_prob"],
        name="sce", reduction="mean", ignore_index=1,
    )  # fmt: skip
    proto = _model(
        [node],
        {
            "scores": (TensorProto.FLOAT, [3, 5, 2]),
            "labels": (TensorProto.INT64, [3, 2]),
            "w": (TensorProto.FLOAT, [5]),
        },
        ["loss", "log_prob"],
        13,
    )
    feeds = {
        "scores": _floats(rng, 3, 5, 2),
        "labels": rng.integers(0, 5, (3, 2)).astype(np.int64),
        "w": rng.random(5).astype(np.float32),
    }
    _expand_and_compare(proto, feeds)


def test_rms_normalization_and_its_schema_default_epsilon() -> None:
    rng = np.random.default_rng(2)
    node = helper.make_node("RMSNormalization", ["x", "scale"], ["y"], name="rms", axis=-1)
    proto = _model(
        [node], {"x": (TensorProto.FLOAT, [2, 3, 6]), "scale": (TensorProto.FLOAT, [6])}, ["y"], 23
    )
    _expand_and_compare(proto, {"x": _floats(rng, 2, 3, 6), "scale": _floats(rng, 6)})


def test_castlike_and_range() -> None:
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("CastLike", ["x", "like"], ["y"], name="cast"),
        helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range"),
    ]
    proto = _model(
        nodes,
        {
            "x": (TensorProto.FLOAT, [4]),
            "like": (TensorProto.INT32, [1]),
            "start": (TensorProto.FLOAT, []),
            "limit": (TensorProto.FLOAT, []),
            "delta": (TensorProto.FLOAT, []),
        },
        ["y", "r"],
        21,
        {"y": TensorProto.INT32},
    )
    feeds = {
        "x": (_floats(rng, 4) * 10),
        "like": np.array([0], np.int32),
        "start": np.array(1.5, np.float32),
        "limit": np.array(9.0, np.float32),
        "delta": np.array(0.7, np.float32),
    }
    model = _expand_and_compare(proto, feeds)
    # Range's body is a Loop: its body graph's nodes carry the prefix too.
    assert all((n.name or "").startswith(("cast/", "range/")) for n in iter_nodes(model.graph))


def test_nested_bodies_expand_until_every_op_converts() -> None:
    """Mish's body calls Softplus, whose body is plain ops: both expand, in one run."""
    rng = np.random.default_rng(4)
    proto = _model(
        [helper.make_node("Mish", ["x"], ["y"], name="mish")],
        {"x": (TensorProto.FLOAT, [2, 7])},
        ["y"],
        18,
    )
    model = _expand_and_compare(proto, {"x": _floats(rng, 2, 7) * 3})
    assert {n.op_type for n in model.graph} >= {"Tanh", "Exp", "Log"}
    assert any((n.name or "").startswith("mish/Softplus_0/") for n in model.graph)


def test_caller_attributes_resolve_and_missing_ones_take_schema_defaults() -> None:
    """Selu's body reads alpha and gamma through ref_attr_name: one given, one left default."""
    rng = np.random.default_rng(5)
    proto = _model(
        [
            helper.make_node("Selu", ["x"], ["a"], name="given", alpha=0.5),
            helper.make_node("Selu", ["x"], ["b"], name="defaulted"),
            helper.make_node("LeakyRelu", ["x"], ["c"], name="leaky", alpha=0.3),
        ],
        {"x": (TensorProto.FLOAT, [3, 4])},
        ["a", "b", "c"],
        18,
    )
    x = _floats(rng, 3, 4)
    _expand_and_compare(proto, {"x": x})
    given, defaulted, _ = _run(ir.to_proto(_expanded(proto)), {"x": x})
    gamma, alpha = 1.05070102214813232421875, 1.67326319217681884765625  # the schema's defaults
    np.testing.assert_allclose(given, np.where(x > 0, gamma * x, gamma * 0.5 * np.expm1(x)), 1e-5)
    np.testing.assert_allclose(
        defaulted, np.where(x > 0, gamma * x, gamma * alpha * np.expm1(x)), 1e-5
    )


def _expanded(proto: onnx.ModelProto) -> ir.Model:
    model = ir.from_proto(proto)
    ExpandFunctionsPass(_plain_ops)(model)
    return model


def test_a_body_at_an_older_opset_goes_through_the_version_converter() -> None:
    """Elu's body imports opset 18; at opset 22 its CastLike is defined anew (since 21)."""
    rng = np.random.default_rng(6)
    proto = _model(
        [helper.make_node("Elu", ["x"], ["y"], name="elu", alpha=0.7)],
        {"x": (TensorProto.FLOAT, [5])},
        ["y"],
        22,
    )
    model = _expand_and_compare(proto, {"x": _floats(rng, 5)})
    assert model.opset_imports[""] == 22


def test_function_ops_inside_subgraphs_expand() -> None:
    rng = np.random.default_rng(7)
    branch = helper.make_graph(
        [helper.make_node("HardSwish", ["x"], ["h"], name="hs")],
        "then",
        [],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["n"])],
        "else",
        [],
        [helper.make_tensor_value_info("n", TensorProto.FLOAT, None)],
    )
    proto = _model(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)],
        {"c": (TensorProto.BOOL, []), "x": (TensorProto.FLOAT, [6])},
        ["y"],
        18,
    )
    x = _floats(rng, 6) * 4
    for cond in (True, False):
        _expand_and_compare(proto, {"c": np.array(cond), "x": x})


def test_nodes_stay_whole_where_a_body_op_has_no_converter() -> None:
    """No converter for ReduceMax: Softmax (whose body needs it) is left as the user wrote it,
    the refusal says why, and the scan still names the Softmax node."""
    proto = _model(
        [
            helper.make_node("Softmax", ["x"], ["y"], name="soft"),
            helper.make_node("HardSwish", ["x"], ["z"], name="hs"),
        ],
        {"x": (TensorProto.FLOAT, [2, 3])},
        ["y", "z"],
        18,
    )

    def no_reduce_max(domain: str, op_type: str, opset: int) -> bool:
        return op_type != "ReduceMax" and _plain_ops(domain, op_type, opset)

    model = ir.from_proto(proto)
    expansion = ExpandFunctionsPass(no_reduce_max)
    expansion(model)
    assert [n.op_type for n in model.graph][0] == "Softmax"
    assert "HardSwish" not in [n.op_type for n in model.graph]
    (reason,) = expansion.refused.values()
    assert "ReduceMax" in reason

    registry: OpRegistry[Any] = OpRegistry("toy", "export")
    for op in ("Exp", "Sub", "ReduceSum", "Div", "Constant", "HardSigmoid", "Mul", "Max", "Min",
               "Add", "Relu", "CastLike", "Cast"):  # fmt: skip
        registry.register(op, since=1)(lambda node, ctx: [])
    found = unsupported_after_expansion(ir.from_proto(proto), registry)
    assert [(op.node, op.op_type) for op in found] == [("soft", "Softmax")]
    assert "ReduceMax" in found[0].reason and found[0].reason.startswith("no toy export converter")


def test_an_op_without_a_body_is_untouched() -> None:
    proto = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        {"x": (TensorProto.FLOAT, [1, 1, 3, 3]), "w": (TensorProto.FLOAT, [1, 1, 1, 1])},
        ["y"],
        18,
    )
    model = ir.from_proto(proto)
    expansion = ExpandFunctionsPass(lambda domain, op_type, opset: False)
    assert not expansion(model).modified
    assert [n.name for n in model.graph] == ["conv"] and not expansion.refused


def test_chained_function_ops_and_an_unnamed_one() -> None:
    """The second node reads the first's output, which the first's expansion replaces; a node
    without a name gets one (its op type) to prefix its body's names."""
    rng = np.random.default_rng(8)
    proto = _model(
        [
            helper.make_node("Softplus", ["x"], ["s"]),
            helper.make_node("HardSwish", ["s"], ["y"], name="hs"),
        ],
        {"x": (TensorProto.FLOAT, [4, 3])},
        ["y"],
        18,
    )
    model = _expand_and_compare(proto, {"x": _floats(rng, 4, 3) * 3})
    prefixes = {(n.name or "").split("/")[0] for n in model.graph}
    assert prefixes == {"Softplus_0", "hs"}


def test_the_scan_lists_every_unnamed_refused_node_and_leaves_the_model_as_it_is() -> None:
    proto = _model(
        [helper.make_node("Softmax", ["x"], ["a"]), helper.make_node("Softmax", ["a"], ["y"])],
        {"x": (TensorProto.FLOAT, [2, 3])},
        ["y"],
        18,
    )
    registry: OpRegistry[Any] = OpRegistry("toy", "export")
    registry.register("Exp", since=1)(lambda node, ctx: [])
    model = ir.from_proto(proto)
    found = unsupported_after_expansion(model, registry)
    assert [(op.node, op.op_type) for op in found] == [("", "Softmax"), ("", "Softmax")]
    assert all("its function body needs" in op.reason for op in found)
    assert [(n.name, n.op_type) for n in model.graph] == [("", "Softmax"), ("", "Softmax")]


def test_a_body_built_from_its_inputs_ranks() -> None:
    """RotaryEmbedding's body depends on its input's rank: the builder gets shapes, not types."""
    rng = np.random.default_rng(9)
    proto = _model(
        [
            helper.make_node(
                "RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], name="rope", num_heads=2
            )
        ],
        {
            "x": (TensorProto.FLOAT, [1, 3, 8]),
            "cos": (TensorProto.FLOAT, [6, 2]),
            "sin": (TensorProto.FLOAT, [6, 2]),
            "pos": (TensorProto.INT64, [1, 3]),
        },
        ["y"],
        23,
    )
    feeds = {
        "x": _floats(rng, 1, 3, 8),
        "cos": _floats(rng, 6, 2),
        "sin": _floats(rng, 6, 2),
        "pos": np.array([[0, 2, 5]], np.int64),
    }
    _expand_and_compare(proto, feeds)
