"""A ``.pt2`` that unframe wrote reads back with the source ONNX names (inputs, outputs, weights,
and the intermediate values and nodes that one fx node of the program yields).

The source is an ONNX model whose names torch would sanitize (``image:0``, ``encoder/dense:0/W``) or
that torch.onnx itself hands out (a weight named ``matmul``, an output named ``relu``); onnxruntime
on the source is the oracle for the values.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx_ir as ir
import onnxruntime as ort
import pytest

pytest.importorskip("torch")

from unframe.backends.pytorch import save_pt2  # noqa: E402
from unframe.frontends.pytorch import load_pytorch  # noqa: E402

_FLOAT = onnx.TensorProto.FLOAT


def _source() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        values = rng.standard_normal(shape).astype(np.float32)
        return oh.make_tensor(name, _FLOAT, list(shape), values.reshape(-1))

    nodes = [
        oh.make_node("MatMul", ["image:0", "encoder/dense:0/W"], ["mm out"], name="dense/MatMul"),
        oh.make_node("Add", ["mm out", "encoder.bias"], ["pre act"], name="dense/BiasAdd"),
        oh.make_node("Relu", ["pre act"], ["hidden"], name="act/Relu"),
        oh.make_node("MatMul", ["hidden", "matmul"], ["relu"], name="head/MatMul"),
        oh.make_node("Sigmoid", ["relu"], ["probs"], name="head/Sigmoid"),
    ]
    graph = oh.make_graph(
        nodes,
        "named",
        [oh.make_tensor_value_info("image:0", _FLOAT, ["N", 4])],
        [
            oh.make_tensor_value_info("relu", _FLOAT, ["N", 2]),
            oh.make_tensor_value_info("probs", _FLOAT, ["N", 2]),
            oh.make_tensor_value_info("hidden", _FLOAT, ["N", 3]),
        ],
        initializer=[weight("encoder/dense:0/W", 4, 3), weight("encoder.bias", 3), weight("matmul", 3, 2)],
    )  # fmt: skip
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_onnx_to_pt2_to_onnx_keeps_the_source_names(tmp_path: Path) -> None:
    source = _source()
    pt2 = tmp_path / "named.pt2"
    save_pt2(ir.from_proto(source), pt2)
    model = load_pytorch(pt2)

    assert [v.name for v in model.graph.inputs] == ["image:0"]
    assert [v.name for v in model.graph.outputs] == ["relu", "probs", "hidden"]
    assert {"encoder/dense:0/W", "encoder.bias", "matmul"} <= set(model.graph.initializers)
    np.testing.assert_array_equal(
        model.graph.initializers["encoder/dense:0/W"].const_value.numpy(),
        onnx.numpy_helper.to_array(source.graph.initializer[0]),
    )
    names = [v.name for node in model.graph for v in node.outputs]
    assert len(names) == len(set(names)), "a value name is given twice"

    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    want = _onnxruntime(source, {"image:0": x})
    got = _onnxruntime(ir.to_proto(model), {"image:0": x})
    assert list(got) == list(want)
    for name, expected in want.items():
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6)


def _forged(pt2: Path, record: bytes, tmp_path: Path) -> Path:
    """A copy of ``pt2`` whose ``unframe.json`` says ``record``."""
    forged = tmp_path / f"forged_{pt2.name}"
    with zipfile.ZipFile(pt2) as original, zipfile.ZipFile(forged, "w") as copy:
        for member in original.infolist():
            data = original.read(member)
            if member.filename.endswith("/extra/unframe.json"):
                data = record
            copy.writestr(member, data)
    return forged


def test_a_pt2_with_a_malformed_names_record_keeps_torchs_names(tmp_path: Path) -> None:
    pt2 = tmp_path / "named.pt2"
    save_pt2(ir.from_proto(_source()), pt2)
    record = b'{"inputs": [42], "outputs": "probs", "initializers": []}'
    model = load_pytorch(_forged(pt2, record, tmp_path))
    assert [v.name for v in model.graph.inputs] == ["image_0"]
    assert "encoder/dense:0/W" not in model.graph.initializers


def _block() -> onnx.ModelProto:
    """Conv -> Relu -> Flatten -> MatMul -> Add -> Softmax, named as TensorFlow would name them.

    The Relu's output is named ``matmul``, the name torch.onnx gives the MatMul's value, so that
    value has to move aside before it takes its own name.
    """
    rng = np.random.default_rng(2)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        values = rng.standard_normal(shape).astype(np.float32)
        return oh.make_tensor(name, _FLOAT, list(shape), values.reshape(-1))

    nodes = [
        oh.make_node(
            "Conv",
            ["image:0", "block1/conv/W"],
            ["block1/conv:0"],
            name="block1/conv",
            pads=[1, 1, 1, 1],
        ),
        oh.make_node("Relu", ["block1/conv:0"], ["matmul"], name="block1/relu"),
        oh.make_node("Flatten", ["matmul"], ["block1/flat:0"], name="block1/flat"),
        oh.make_node("MatMul", ["block1/flat:0", "head/W"], ["head/matmul:0"], name="head/matmul"),
        oh.make_node("Add", ["head/matmul:0", "head/b"], ["head/add:0"], name="head/add"),
        oh.make_node("Softmax", ["head/add:0"], ["probs"], name="head/softmax"),
    ]
    graph = oh.make_graph(
        nodes,
        "block",
        [oh.make_tensor_value_info("image:0", _FLOAT, ["N", 3, 4, 4])],
        [oh.make_tensor_value_info("probs", _FLOAT, ["N", 5])],
        initializer=[weight("block1/conv/W", 2, 3, 3, 3), weight("head/W", 32, 5), weight("head/b", 5)],
    )  # fmt: skip
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])


def _node_outputs(model: ir.Model) -> list[tuple[str, str | None, list[str | None]]]:
    return [(node.op_type, node.name, [v.name for v in node.outputs]) for node in model.graph]


def _matches_onnxruntime(source: onnx.ModelProto, model: ir.Model) -> None:
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4)).astype(np.float32)
    want = _onnxruntime(source, {"image:0": x})
    got = _onnxruntime(ir.to_proto(model), {"image:0": x})
    assert list(got) == list(want)
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-6)


def test_intermediate_values_and_their_nodes_keep_their_source_names(tmp_path: Path) -> None:
    source = _block()
    pt2 = tmp_path / "block.pt2"
    save_pt2(ir.from_proto(source), pt2)
    model = load_pytorch(pt2)

    assert _node_outputs(model) == [
        ("Conv", "block1/conv", ["block1/conv:0"]),
        ("Relu", "block1/relu", ["matmul"]),
        ("Reshape", "block1/flat", ["block1/flat:0"]),
        ("MatMul", "head/matmul", ["head/matmul:0"]),
        ("Add", "head/add", ["head/add:0"]),
        ("Softmax", "head/softmax", ["probs"]),
    ]
    _matches_onnxruntime(source, model)


def test_a_values_record_that_names_nothing_here_changes_nothing(tmp_path: Path) -> None:
    source = _block()
    pt2 = tmp_path / "block.pt2"
    save_pt2(ir.from_proto(source), pt2)
    with zipfile.ZipFile(pt2) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith("/extra/unframe.json")]
        record = json.loads(archive.read(member))
    plain = dict(record, values={})
    torchs_names = _node_outputs(load_pytorch(_forged(pt2, json.dumps(plain).encode(), tmp_path)))
    assert ("Relu", "node_relu", ["relu"]) in torchs_names

    unknown = dict(
        record,
        values={
            "no_such_node": {"value": "ghost:0", "node": "ghost", "target": "aten.relu.default"},
            # torch.onnx's Relu value, but the record says another op made it: not that node.
            "relu": {"value": "wrong:0", "node": "wrong", "target": "aten.sigmoid.default"},
        },
    )
    model = load_pytorch(_forged(pt2, json.dumps(unknown).encode(), tmp_path))
    assert _node_outputs(model) == torchs_names
    assert [v.name for v in model.graph.inputs] == ["image:0"]
    _matches_onnxruntime(source, model)

    for values in ([1, 2], {"relu": "block1/relu:0"}, {"relu": {"value": 3}}):
        malformed = json.dumps(dict(record, values=values)).encode()
        model = load_pytorch(_forged(pt2, malformed, tmp_path))
        assert _node_outputs(model) == torchs_names
        assert [v.name for v in model.graph.inputs] == ["image:0"]
