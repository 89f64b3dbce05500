"""RNN, GRU and LSTM unrolled: run-time sequence lengths against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import run_net
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_reference

STEPS, BATCH, INPUT, HIDDEN = 4, 3, 2, 5
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _model(op_type: str, direction: str = "forward") -> ir.Model:
    gates = GATES[op_type]
    directions = 2 if direction == "bidirectional" else 1
    inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [STEPS, BATCH, INPUT]),
        helper.make_tensor_value_info("W", TensorProto.FLOAT, [directions, gates * HIDDEN, INPUT]),
        helper.make_tensor_value_info("R", TensorProto.FLOAT, [directions, gates * HIDDEN, HIDDEN]),
        helper.make_tensor_value_info("B", TensorProto.FLOAT, [directions, 2 * gates * HIDDEN]),
        helper.make_tensor_value_info("lengths", TensorProto.INT32, [BATCH]),
    ]
    outputs = [
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, [STEPS, directions, BATCH, HIDDEN]),
        helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [directions, BATCH, HIDDEN]),
    ]
    node = helper.make_node(
        op_type, ["X", "W", "R", "B", "lengths"], ["Y", "Y_h"], hidden_size=HIDDEN,
        direction=direction,
    )  # fmt: skip
    graph = helper.make_graph([node], "recurrent", inputs, outputs)
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))


def _feeds(op_type: str, lengths: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    gates = GATES[op_type]
    return {
        "X": rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32),
        "W": rng.standard_normal((1, gates * HIDDEN, INPUT)).astype(np.float32) * 0.5,
        "R": rng.standard_normal((1, gates * HIDDEN, HIDDEN)).astype(np.float32) * 0.5,
        "B": rng.standard_normal((1, 2 * gates * HIDDEN)).astype(np.float32) * 0.5,
        "lengths": np.array(lengths, dtype=np.int32),
    }


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
def test_run_time_sequence_lengths_match_onnxruntime(op_type: str) -> None:
    # Past a sequence's end its outputs are 0 and its state is the last one reached.
    model = _model(op_type)
    feeds = _feeds(op_type, [4, 1, 3])
    reference = run_reference(model, feeds)
    assert reference.engine == "onnxruntime", reference.fallback_reason
    nets = export_model(model)
    got = run_net(nets.predict_net, nets.init_net, feeds)
    for name in ("Y", "Y_h"):
        np.testing.assert_allclose(got[name], reference.outputs[name], rtol=1e-5, atol=1e-6)
    assert not got["Y"][1:, 0, 1].any()  # sequence 1 ends after one step


def test_reverse_direction_with_sequence_lengths_is_refused() -> None:
    with pytest.raises(UnsupportedOpsError, match="GRU"):
        export_model(_model("GRU", "reverse"))
