"""Names survive a round trip through Caffe2: ONNX node names become NetDef op names and come back
as IR node names; value names stay blob names and come back as value names."""

from __future__ import annotations

import numpy as np
import onnx.helper as oh
import onnx_ir as ir
from onnx import TensorProto, numpy_helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native import Caffe2Model
from unframe.frontends.caffe2 import import_caffe2


def _named_model() -> ir.Model:
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.random((4, 3, 3, 3), dtype=np.float32), "conv1.weight")
    nodes = [
        oh.make_node(
            "Conv", ["image", "conv1.weight"], ["conv1_out"], name="/conv1/Conv", pads=[1] * 4
        ),
        oh.make_node("Relu", ["conv1_out"], ["relu1"], name="relu1"),  # a node named as its output
        # Round has no Caffe2 operator: the exporter builds it from several, all named after it.
        oh.make_node("Round", ["relu1"], ["rounded"], name="/round/Round"),
        oh.make_node("GlobalAveragePool", ["rounded"], ["pooled"], name="/pool/GlobalAveragePool"),
        oh.make_node("Flatten", ["pooled"], ["flat"], name="/flatten/Flatten"),
        oh.make_node("Softmax", ["flat"], ["probs"], name="/softmax/Softmax", axis=1),
    ]
    graph = oh.make_graph(
        nodes,
        "named",
        [oh.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [oh.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4])],
        initializer=[weight],
    )
    return ir.from_proto(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)]))


def test_node_and_value_names_survive_onnx_to_caffe2_and_back() -> None:
    source = _named_model()
    nets = export_model(source)
    # Every op the exporter writes for a node carries the node's name.
    op_names = {op.name for op in nets.predict_net.op}
    assert op_names == {node.name for node in source.graph}
    back = import_caffe2(Caffe2Model(nets.predict_net, nets.init_net, nets.value_info))
    by_name = {node.name: node for node in back.graph}
    for node in source.graph:
        assert node.name in by_name, node.name
    # A node the exporter writes as one op comes back as one node of that name, writing the
    # value of the same name.
    for name, output in [
        ("/conv1/Conv", "conv1_out"),
        ("relu1", "relu1"),
        ("/softmax/Softmax", "probs"),
    ]:
        assert [value.name for value in by_name[name].outputs] == [output]
    values = {value.name for node in back.graph for value in node.outputs}
    assert {"conv1_out", "relu1", "rounded", "pooled", "flat", "probs"} <= values
    assert [value.name for value in back.graph.outputs] == ["probs"]
    assert [value.name for value in back.graph.inputs] == ["image"]
    assert "conv1.weight" in back.graph.initializers
