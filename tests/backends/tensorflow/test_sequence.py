"""Sequences and optionals between converters in the TensorFlow backend, against onnxruntime.

Oracle: onnxruntime on the source model (exact for these data-movement ops).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402
from unframe.shared_ir.errors import UnsupportedOpsError  # noqa: E402

F = TensorProto.FLOAT


def _const(name: str, value: list[int] | int) -> TensorProto:
    return numpy_helper.from_array(np.array(value, np.int64), name)


def test_sequence_and_optional_ops_inside_a_graph() -> None:
    nodes = [
        helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], axis=1, name="split"),
        helper.make_node("SequenceInsert", ["parts", "y", "minus_one"], ["more"], name="insert"),
        helper.make_node("SequenceLength", ["more"], ["length"], name="length"),
        helper.make_node("SequenceAt", ["more", "minus_one"], ["last"], name="at"),
        helper.make_node("SequenceErase", ["more", "zero"], ["fewer"], name="erase"),
        helper.make_node("ConcatFromSequence", ["fewer"], ["joined"], axis=1, name="concat"),
        helper.make_node("SplitToSequence", ["x"], ["rows"], keepdims=0, name="rows"),
        helper.make_node("ConcatFromSequence", ["rows"], ["stacked"], axis=-1, new_axis=1),
        helper.make_node("Optional", ["x"], ["maybe"], name="optional"),
        helper.make_node("OptionalHasElement", ["maybe"], ["has"], name="has"),
        helper.make_node("OptionalGetElement", ["maybe"], ["got"], name="get"),
        helper.make_node(
            "Optional", [], ["nothing"], type=helper.make_tensor_type_proto(F, [2]), name="empty"
        ),
        helper.make_node("OptionalHasElement", ["nothing"], ["has_nothing"], name="has_empty"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", F, [4, 6]),
            helper.make_tensor_value_info("y", F, [4, 2]),
        ],
        [
            helper.make_tensor_value_info("length", TensorProto.INT64, []),
            helper.make_tensor_value_info("last", F, None),
            helper.make_tensor_value_info("joined", F, None),
            helper.make_tensor_value_info("stacked", F, None),
            helper.make_tensor_value_info("has", TensorProto.BOOL, []),
            helper.make_tensor_value_info("got", F, None),
            helper.make_tensor_value_info("has_nothing", TensorProto.BOOL, []),
        ],
        initializer=[_const("sizes", [1, 2, 3]), _const("minus_one", -1), _const("zero", 0)],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(0)
    feeds = {
        "x": rng.standard_normal((4, 6)).astype(np.float32),
        "y": rng.standard_normal((4, 2)).astype(np.float32),
    }
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    got = run_built(to_tensorflow(ir.from_proto(proto)), feeds)
    for output, expected in zip(graph.output, want, strict=True):
        actual = got[output.name]
        assert actual.dtype == expected.dtype, output.name
        np.testing.assert_array_equal(actual, expected, err_msg=output.name)


def test_a_sequence_graph_output_is_refused_by_name() -> None:
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x", "x"], ["seq"], name="construct")],
        "g",
        [helper.make_tensor_value_info("x", F, [2])],
        [helper.make_tensor_sequence_value_info("seq", F, [2])],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    with pytest.raises(UnsupportedOpsError) as raised:
        to_tensorflow(model)
    (refusal,) = raised.value.ops
    assert (refusal.node, refusal.op_type) == ("construct", "SequenceConstruct")
    assert "graph output" in refusal.reason
