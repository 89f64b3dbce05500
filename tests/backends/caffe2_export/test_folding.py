"""``export_model`` folds shape arithmetic itself (the shared pass), so a model that skips the
pass pipeline (``--no-optimize``, conformance runs) exports values Caffe2 needs as constants."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import run_net


def test_pads_computed_from_constants_and_a_static_shape_export() -> None:
    # pads = Concat(Shape(x) - Shape(x), [0, 1] * 2): Caffe2's pad needs them before running.
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Sub", ["shape", "shape"], ["zeros"]),
        helper.make_node("Mul", ["ends", "two"], ["scaled"]),
        helper.make_node("Concat", ["zeros", "scaled"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant"),
    ]
    proto = helper.make_model(
        helper.make_graph(
            nodes,
            "pad",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=[
                numpy_helper.from_array(np.array([0, 1], np.int64), "ends"),
                numpy_helper.from_array(np.array(2, np.int64), "two"),
            ],
        ),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (expected,) = session.run(None, {"x": x})
    nets = export_model(ir.from_proto(proto))
    # No arithmetic on shapes is left in the net: the pads are a constant of the init net.
    assert [op.type for op in nets.predict_net.op if op.type in ("Shape", "Sub", "Mul")] == []
    (result,) = run_net(nets.predict_net, nets.init_net, {"x": x}).values()
    np.testing.assert_array_equal(result, expected)
    # By hand: two zero columns after each row.
    np.testing.assert_array_equal(expected, [[0, 1, 2, 0, 0], [3, 4, 5, 0, 0]])
