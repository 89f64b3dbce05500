"""Sequence converters (``ops/sequence.py``): onnx's node tests and sequences inside a graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

torch = pytest.importorskip("torch")

from unframe.backends.pytorch import export_program, to_torch  # noqa: E402
from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy  # noqa: E402

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402

OPS = ["SequenceInsert", "SplitToSequence", "SequenceMap"]
#: Sequence ops that onnx ships no node test of their own for (covered by the graphs below).
OTHER_OPS = [
    "SequenceConstruct", "SequenceEmpty", "SequenceAt", "SequenceErase", "SequenceLength",
    "ConcatFromSequence",
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


# -- sequences inside a graph ------------------------------------------------------------------


def _graph_model(x_dims: list[Any]) -> onnx.ModelProto:
    """x -> split into rows -> insert/erase/at/length -> concatenate, stack and map back."""
    make = helper.make_node
    nodes = [
        make("SplitToSequence", ["x"], ["rows"], axis=0, keepdims=0),
        make("SequenceConstruct", ["x", "x"], ["pair"]),
        make("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
        make("SequenceAt", ["rows", "minus_one"], ["last"]),
        make("SequenceInsert", ["rows", "last", "zero"], ["with_last_first"]),
        make("SequenceErase", ["with_last_first"], ["erased"]),  # drops the last row
        make("SequenceInsert", ["empty", "last"], ["single"]),
        make("SequenceLength", ["erased"], ["length"]),
        make("ConcatFromSequence", ["erased"], ["stacked"], axis=-1, new_axis=1),
        make("ConcatFromSequence", ["pair"], ["joined"], axis=1),
        make("ConcatFromSequence", ["single"], ["only"], axis=0),
        make(
            "SequenceMap",
            ["rows", "last"],
            ["mapped"],
            body=helper.make_graph(
                [make("Mul", ["row", "scale"], ["out"])],
                "body",
                [
                    helper.make_tensor_value_info("row", TensorProto.FLOAT, None),
                    helper.make_tensor_value_info("scale", TensorProto.FLOAT, None),
                ],
                [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
            ),
        ),
        make("ConcatFromSequence", ["mapped"], ["products"], axis=0, new_axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sequences",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
        [
            helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None)
            for name in ("stacked", "length", "joined", "only", "products")
        ],
        initializer=[
            numpy_helper.from_array(np.array(-1, dtype=np.int64), "minus_one"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_sequences_inside_a_graph_match_the_reference() -> None:
    model = _graph_model([4, 3])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    module = to_torch(ir.from_proto(model))
    with torch.no_grad():
        got = list(outputs_to_numpy(module(*tensors_from_numpy([x]))).values())
    want = ReferenceEvaluator(model).run(None, {"x": x})
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    # stacked: rows [3, 0, 1, 2] (last row inserted first, then the last erased), new last axis.
    np.testing.assert_array_equal(got[0], x[[3, 0, 1, 2]].T)
    assert int(got[1]) == 4


def test_sequences_export_with_a_dynamic_width() -> None:
    model = _graph_model([4, "w"])
    module = export_program(ir.from_proto(model)).module()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    with torch.no_grad():
        got = list(outputs_to_numpy(module(torch.from_numpy(x))).values())
    want = ReferenceEvaluator(model).run(None, {"x": x})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_split_to_sequence_scalar_and_list_splits() -> None:
    x = np.arange(10, dtype=np.int32).reshape(5, 2)
    for split in (np.array(2, dtype=np.int64), np.array([1, 4], dtype=np.int64)):
        for constant in (True, False):
            nodes = [
                helper.make_node("SplitToSequence", ["x", "split"], ["parts"]),
                helper.make_node("SequenceAt", ["parts", "minus_one"], ["y"]),
            ]
            inputs = [helper.make_tensor_value_info("x", TensorProto.INT32, [5, 2])]
            initializers = [numpy_helper.from_array(np.array(-1, dtype=np.int64), "minus_one")]
            if constant:
                initializers.append(numpy_helper.from_array(split, "split"))
            else:
                inputs.append(helper.make_tensor_value_info("split", TensorProto.INT64, None))
            graph = helper.make_graph(
                nodes,
                "split",
                inputs,
                [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                initializer=initializers,
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
            feeds = [x] if constant else [x, split]
            with torch.no_grad():
                result = to_torch(ir.from_proto(model))(*tensors_from_numpy(feeds))
            (got,) = outputs_to_numpy(result).values()
            np.testing.assert_array_equal(got, x[4:] if split.ndim == 0 else x[1:])


def test_every_sequence_op_is_registered() -> None:
    from unframe.backends.pytorch.driver import load_converters
    from unframe.backends.pytorch.registry import ops

    load_converters()
    assert not [op for op in OPS + OTHER_OPS if not ops.supports(op, 17)]
