"""``to_torch`` folds shape arithmetic itself, so models that skip the pass pipeline
(``--no-optimize``, conformance runs) reach the converters with their constants computed."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as oh
import onnx_ir as ir
import onnxruntime
import pytest

torch = pytest.importorskip("torch")

from unframe.backends.pytorch import fx_functions, to_torch  # noqa: E402

_FLOAT = onnx.TensorProto.FLOAT


def _ints(name: str, values: list[int]) -> onnx.NodeProto:
    return oh.make_node(
        "Constant", [], [name], value=oh.make_tensor(name, onnx.TensorProto.INT64, [2], values)
    )


def _reshape_by_arithmetic(prefix: str, source: str, out: str) -> list[onnx.NodeProto]:
    """``Reshape(source, [2, 3] * [1, 2])``: a target only known once the Mul is computed."""
    return [
        _ints(f"{prefix}base", [2, 3]),
        _ints(f"{prefix}factor", [1, 2]),
        oh.make_node("Mul", [f"{prefix}base", f"{prefix}factor"], [f"{prefix}target"]),
        oh.make_node("Reshape", [source, f"{prefix}target"], [out]),
    ]


def _runtime_int_lists(module: torch.nn.Module) -> int:
    """fx calls that read a shape's values at run time (what a known target avoids)."""
    return sum(
        node.target is fx_functions.to_int_list
        for sub in module.modules()
        if isinstance(sub, torch.fx.GraphModule)
        for node in sub.graph.nodes
    )


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    module = to_torch(ir.from_proto(model))
    assert _runtime_int_lists(module) == 0
    got = module(*(torch.from_numpy(v) for v in feeds.values()))
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for actual, expected in zip(got, session.run(None, feeds), strict=True):
        np.testing.assert_array_equal(actual.detach().numpy(), expected)


def test_a_reshape_target_computed_from_constants_is_known_when_building() -> None:
    graph = oh.make_graph(
        _reshape_by_arithmetic("", "x", "y"),
        "g",
        [oh.make_tensor_value_info("x", _FLOAT, [3, 4])],
        [oh.make_tensor_value_info("y", _FLOAT, None)],
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])
    _check(model, {"x": np.arange(12, dtype=np.float32).reshape(3, 4)})


def test_shape_arithmetic_inside_a_branch_is_known_when_building() -> None:
    # In a subgraph the folded nodes stay; their outputs carry the computed const_value.
    branches = {
        key: oh.make_graph(
            _reshape_by_arithmetic(f"{key}_", "x", f"{key}_y"),
            key,
            [],
            [oh.make_tensor_value_info(f"{key}_y", _FLOAT, None)],
        )
        for key in ("then", "else")
    }
    graph = oh.make_graph(
        [
            oh.make_node(
                "If", ["cond"], ["y"], then_branch=branches["then"], else_branch=branches["else"]
            )
        ],
        "g",
        [
            oh.make_tensor_value_info("x", _FLOAT, [3, 4]),
            oh.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []),
        ],
        [oh.make_tensor_value_info("y", _FLOAT, None)],
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    _check(model, {"x": x, "cond": np.array(True)})
