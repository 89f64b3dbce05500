"""Core ML backend, Scan: unrolled over its static length, exported, re-imported and run on
onnxruntime against onnx's node-test data and onnxruntime on the source model (reverse
directions, other axes, a body reading an outer value, opset 8's batched form)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from tests.backends.coreml.node_test_data import assert_matches_node_test_data
from unframe.backends.coreml.driver import export_mlprogram
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


@pytest.mark.parametrize("name", ["test_scan9_multi_state", "test_scan9_scalar", "test_scan_sum"])
def test_scan_matches_onnx_node_test_data(name: str) -> None:
    assert_matches_node_test_data(name, rtol=1e-5, atol=1e-6)


def _scan_model(length: int | str) -> ir.Model:
    """state' = state * 0.5 + a_t * w (w an outer value); outputs state' and a_t - b_t, with a
    scanned backwards along axis 1, b forwards along axis 0, the second output stacked
    backwards along axis 1."""
    body = helper.make_graph(
        [
            helper.make_node("Mul", ["s_in", "half"], ["scaled"]),
            helper.make_node("Mul", ["a_t", "w"], ["weighted"]),
            helper.make_node("Add", ["scaled", "weighted"], ["s_out"]),
            helper.make_node("Sub", ["a_t", "b_t"], ["diff"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("a_t", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("b_t", TensorProto.FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("s_copy", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("diff", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])],
    )
    body.node.append(helper.make_node("Identity", ["s_out"], ["s_copy"]))
    scan = helper.make_node(
        "Scan", ["s0", "a", "b"], ["s", "states", "diffs"], body=body, num_scan_inputs=2,
        scan_input_axes=[1, 0], scan_input_directions=[1, 0], scan_output_axes=[0, -1],
        scan_output_directions=[0, 1],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["s0"], ["w"]), scan],
        "scan",
        [
            helper.make_tensor_value_info("s0", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [3, length]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [length, 3]),
        ],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
            for n in ("s", "states", "diffs")
        ],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]))


def test_scan_with_directions_axes_and_an_outer_value_matches_onnxruntime() -> None:
    model = _scan_model(4)
    rng = np.random.default_rng(0)
    feeds = {
        "s0": rng.standard_normal(3).astype(np.float32),
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.standard_normal((4, 3)).astype(np.float32),
    }
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
    actual = CoreMLFramework().run_ir(model, feeds)
    for name, want in expected.items():
        assert actual[name].shape == want.shape
        np.testing.assert_allclose(actual[name], want, rtol=1e-5, atol=1e-6)


def test_scan_of_a_length_unknown_when_built_is_refused() -> None:
    with pytest.raises(UnsupportedOpsError) as raised:
        export_mlprogram(_scan_model("n"))
    assert "lengths unknown when built" in raised.value.ops[0].reason
