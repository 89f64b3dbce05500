"""The exporter's driver: the shared conversion loop, one error listing every refusal, no dry run."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx.helper as oh
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto

from unframe.backends.caffe2.driver import export_model
from unframe.cli.main import cli
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.shared_ir.errors import ExitCode, UnsupportedOpsError


def _two_refusals() -> onnx.ModelProto:
    """A float Mod (fmod=1) and a training-mode Dropout: both have converters that refuse them."""
    x = oh.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    outputs = [oh.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("y", "z")]
    nodes = [
        oh.make_node("Mod", ["x", "x"], ["m"], name="mod_float", fmod=1),
        oh.make_node("Relu", ["m"], ["y"], name="relu_after"),
        oh.make_node("Dropout", ["x", "ratio", "train"], ["z"], name="dropout_train"),
    ]
    weights = [
        oh.make_tensor("ratio", TensorProto.FLOAT, [], [0.5]),
        oh.make_tensor("train", TensorProto.BOOL, [], [True]),
    ]
    graph = oh.make_graph(nodes, "g", [x], outputs, initializer=weights)
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])


def test_every_refusal_is_raised_at_once_and_dependents_are_skipped() -> None:
    with pytest.raises(UnsupportedOpsError) as caught:
        export_model(ir.from_proto(_two_refusals()))
    refused = {(op.node, op.op_type) for op in caught.value.ops}
    # The Relu reads the refused Mod's output: its failure would only repeat the Mod's.
    assert refused == {("mod_float", "Mod"), ("dropout_train", "Dropout")}


def test_the_scan_before_a_save_does_not_export() -> None:
    # Both nodes have converters and Caffe2 types: only converting finds the refusals.
    assert Caffe2Framework().unsupported_nodes(ir.from_proto(_two_refusals())) == []


def test_convert_lists_every_refused_node_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "two.onnx"
    onnx.save(_two_refusals(), source)
    target = tmp_path / "out.caffe2"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(target)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "'mod_float'" in result.output and "'dropout_train'" in result.output
    assert not target.exists()


def test_a_type_caffe2_lacks_is_found_by_the_scan() -> None:
    x = oh.make_tensor_value_info("x", TensorProto.UINT32, [2])
    y = oh.make_tensor_value_info("y", TensorProto.UINT32, [2])
    graph = oh.make_graph([oh.make_node("Identity", ["x"], ["y"], name="same")], "g", [x], [y])
    model = ir.from_proto(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)]))
    found = Caffe2Framework().unsupported_nodes(model)
    assert [(op.node, op.op_type) for op in found] == [("x", "graph input"), ("same", "Identity")]
    assert all("UINT32" in op.reason for op in found)
