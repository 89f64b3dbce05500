"""``validate --locate``: the first node of SRC whose output the converted model does not reproduce.

The oracle is the fault each test plants itself: one weight edited inside a converted model (the
node that reads it is the answer), or one converter of a backend swapped for a wrong one (the node
it converts is the answer).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli as cli_main
from unframe.converters import api

ACTIVATIONS = ("Relu", "Relu", "Sigmoid", "Relu", "Relu", "Relu")


def conv_chain(path: Path, activations: tuple[str, ...] = ACTIVATIONS) -> Path:
    """x -> (Conv -> activation) per entry -> GlobalAveragePool -> Flatten -> y; every value named."""
    rng = np.random.default_rng(7)
    nodes, weights = [], []
    previous, channels = "x", 3
    for index, activation in enumerate(activations):
        weight = (rng.standard_normal((4, channels, 3, 3)) * 0.4).astype(np.float32)
        bias = rng.standard_normal(4).astype(np.float32)
        weights += [
            numpy_helper.from_array(weight, f"conv{index}.weight"),
            numpy_helper.from_array(bias, f"conv{index}.bias"),
        ]
        nodes += [
            helper.make_node(
                "Conv",
                [previous, f"conv{index}.weight", f"conv{index}.bias"],
                [f"conv{index}_out"],
                name=f"conv{index}",
                pads=[1, 1, 1, 1],
            ),
            helper.make_node(
                activation, [f"conv{index}_out"], [f"act{index}_out"], name=f"act{index}"
            ),
        ]
        previous, channels = f"act{index}_out", 4
    nodes += [
        helper.make_node("GlobalAveragePool", [previous], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["y"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def tamper_pt2(path: Path, key: str) -> None:
    """Adds 1 to the first element of the ``state_dict`` entry ``key`` inside a ``.pt2`` archive."""
    original = path.with_name(path.name + ".orig")
    path.rename(original)
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(path, "w") as target:
        root = source.namelist()[0].split("/")[0]
        config = json.loads(source.read(f"{root}/data/weights/model_weights_config.json"))
        member = f"{root}/data/weights/{config['config'][key]['path_name']}"
        for info in source.infolist():
            data = source.read(info)
            if info.filename == member:
                array = np.frombuffer(data, np.float32).copy()
                array[0] += 1.0
                data = array.tobytes()
            target.writestr(info, data)
    original.unlink()


def caffe2_model(path: Path):  # noqa: ANN201 - Caffe2Model, imported lazily
    from unframe.backends.caffe2.native import read_model

    return read_model(path)


def write_caffe2(model, path: Path) -> None:  # noqa: ANN001
    from unframe.backends.caffe2.native import write_model

    shutil.rmtree(path)
    write_model(model, path)


def tamper_init_net(path: Path, blob: str) -> None:
    model = caffe2_model(path)
    (fill,) = [op for op in model.init_net.op if list(op.output) == [blob]]
    (values,) = [arg for arg in fill.arg if arg.name == "values"]
    values.floats[0] += 1.0
    write_caffe2(model, path)


def strip_blob_names(path: Path, *, op_names: bool = True) -> None:
    """Renames every intermediate blob of a Caffe2 predict net (b0, b1, ...) and, with
    ``op_names``, drops every op's name (the ONNX node's): then no name survives."""
    model = caffe2_model(path)
    net = model.predict_net
    kept = set(net.external_input) | set(net.external_output)
    renamed: dict[str, str] = {}
    for op in net.op:
        if op_names:
            op.ClearField("name")
        for field in (op.input, op.output):
            for index, name in enumerate(field):
                if name not in kept:
                    field[index] = renamed.setdefault(name, f"b{len(renamed)}")
    write_caffe2(model, path)


@pytest.fixture
def caffe2_sigmoid_as_tanh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted backend bug: the Caffe2 exporter writes ONNX Sigmoid as Caffe2 Tanh."""
    from unframe.backends.caffe2.driver import export_registry
    from unframe.backends.caffe2.ops.elementwise import _one_to_one

    registry = export_registry()
    key = ("", "Sigmoid")
    wrong = [
        dataclasses.replace(entry, function=_one_to_one("Sigmoid", "Tanh", entry.since))
        for entry in registry._entries[key]
    ]
    monkeypatch.setitem(registry._entries, key, wrong)


@pytest.fixture
def caffe2_runtime_sigmoid_as_tanh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted runtime bug: Caffe2's executor computes Sigmoid as Tanh (the nets stay right)."""
    from unframe.backends.caffe2.native.executor.registry import CAFFE2_OPS, DOMAIN
    from unframe.shared_ir.op_registry import load_op_modules

    load_op_modules("unframe.backends.caffe2.native.executor.ops")
    tanh = CAFFE2_OPS.lookup("Tanh", 1, DOMAIN)
    key = (DOMAIN, "Sigmoid")
    wrong = [dataclasses.replace(entry, function=tanh) for entry in CAFFE2_OPS._entries[key]]
    monkeypatch.setitem(CAFFE2_OPS._entries, key, wrong)


def test_a_fault_of_the_target_runtime_is_found_in_one_native_run_exposing_its_blobs(
    tmp_path, caffe2_runtime_sigmoid_as_tanh
):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)

    located = api.validate(source, converted, locate=True).locate

    assert located is not None and located.found and located.method == "names"
    assert "run natively" in located.how and "caffe2's runtime" in located.how
    assert (located.node, located.op, located.inputs_ok) == ("act2", "Sigmoid", True)
    assert located.runs == 1 and located.conversions == 0


def test_where_only_the_ir_is_compared_a_runtime_fault_is_bisected_on_that_runtime(
    tmp_path, caffe2_runtime_sigmoid_as_tanh
):
    from unframe.converters.locate import locate
    from unframe.converters.registry import get_framework
    from unframe.shared_ir.inputs import example_inputs

    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)
    source_model, converted_model = api.load(source), api.load(converted)
    feeds = example_inputs(list(source_model.graph.inputs))

    # No converted_path: the converted model is compared in the IR only, where the net is right
    # and every shared value agrees; its prefixes, run by the executor, find the wrong kernel.
    located = locate(
        source_model, converted_model, get_framework("caffe2"), feeds, rtol=1e-4, atol=1e-5
    )

    assert located.found and located.method == "bisection"
    assert "every one agreeing" in located.how
    assert (located.node, located.op, located.inputs_ok) == ("act2", "Sigmoid", True)


def test_a_weight_edited_in_a_caffe2_init_net_is_located_at_the_conv_reading_it(tmp_path):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)
    tamper_init_net(converted, "conv3.weight")

    result = api.validate(source, converted, locate=True)

    assert not result.ok
    located = result.locate
    assert located is not None and located.found and located.method == "names"
    assert (located.node, located.op, located.converted_name) == ("conv3", "Conv", "conv3_out")
    assert located.inputs_ok is True  # act2_out, computed upstream, still matches
    weight = next(i for i in located.inputs if i.name == "conv3.weight")
    assert weight.kind == "weight" and not weight.ok and weight.max_abs == pytest.approx(1.0)
    assert located.max_abs > 0 and located.runs == 1
    assert "conv3.weight" in located.note


def test_a_state_dict_entry_edited_in_a_pt2_is_located_by_the_cli(tmp_path):
    pytest.importorskip("torch", reason="the PyTorch backend needs torch")
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.pt2"
    api.convert(source, converted)
    tamper_pt2(converted, "conv4_weight")

    runner = CliRunner()
    outcome = runner.invoke(
        cli_main, ["validate", str(source), str(converted), "--locate", "--json"]
    )

    assert outcome.exit_code == 1, outcome.output
    payload = json.loads(outcome.output)
    assert payload["ok"] is False and payload["outputs"][0]["name"] == "y"  # existing keys kept
    located = payload["locate"]
    assert {"node", "op", "converted_name", "max_abs", "max_rel", "inputs_ok"} <= set(located)
    assert (located["node"], located["op"], located["inputs_ok"]) == ("conv4", "Conv", True)
    assert located["converted_name"] == "conv4_out"
    assert [i["name"] for i in located["inputs"] if not i["ok"]] == ["conv4.weight"]

    table = runner.invoke(cli_main, ["validate", str(source), str(converted), "--locate"])
    assert table.exit_code == 1
    assert "first diverging node: conv4 (Conv)" in table.output
    assert "conv4.weight" in table.output


def test_matching_outputs_locate_nothing(tmp_path):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)

    result = api.validate(source, converted, locate=True)

    assert result.ok and result.locate is None
    assert result.as_json()["locate"] is None
    assert "locate" not in api.validate(source, converted).as_json()  # only where asked


def test_a_wrongly_converted_op_is_located_through_convert_on_real_inputs(
    tmp_path, caffe2_sigmoid_as_tanh
):
    source = conv_chain(tmp_path / "m.onnx")
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.random.default_rng(3).uniform(-2, 2, (1, 3, 6, 6)).astype(np.float32))

    outcome = CliRunner().invoke(
        cli_main,
        ["convert", str(source), "-o", str(tmp_path / "m.caffe2"), "--locate", "--inputs",
         str(inputs), "--json"],
    )  # fmt: skip

    assert outcome.exit_code == 1, outcome.output
    located = json.loads(outcome.output)["validation"]["locate"]
    assert (located["node"], located["op"], located["inputs_ok"]) == ("act2", "Sigmoid", True)
    assert all(i["ok"] for i in located["inputs"])  # nothing but the node itself is wrong


def test_bisection_finds_the_wrong_op_where_no_name_survives(tmp_path, caffe2_sigmoid_as_tanh):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)
    strip_blob_names(converted)

    result = api.validate(source, converted, locate=True)

    located = result.locate
    assert located is not None and located.method == "bisection" and located.found
    assert (located.node, located.op, located.inputs_ok) == ("act2", "Sigmoid", True)
    nodes = len(onnx.load(source).graph.node)
    assert located.conversions <= 2 * math.log2(nodes)
    assert located.runs == 1


def test_caffe2_op_names_alone_match_the_nodes_where_blobs_were_renamed(
    tmp_path, caffe2_sigmoid_as_tanh
):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)
    strip_blob_names(converted, op_names=False)

    located = api.validate(source, converted, locate=True).locate

    assert located is not None and located.method == "names" and located.conversions == 0
    assert (located.node, located.op, located.inputs_ok) == ("act2", "Sigmoid", True)
    assert located.converted_name is not None and located.converted_name.startswith("b")


def test_bisection_says_so_where_the_backend_makes_a_matching_model(tmp_path):
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.caffe2"
    api.convert(source, converted)
    tamper_init_net(converted, "conv1.weight")  # edited after conversion: no prefix reproduces it

    result = api.validate(source, converted, locate=True, locate_method="bisection")

    located = result.locate
    assert located is not None and not located.found and located.conversions == 1
    assert "differs from what the backend makes now" in located.note


def test_a_variable_edited_in_a_savedmodel_is_located_through_tf_op_scopes(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="the TensorFlow backend needs tensorflow")
    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.savedmodel"
    api.convert(source, converted)
    loaded = tf.saved_model.load(str(converted))
    signature = loaded.signatures["serving_default"]
    (variable,) = [v for v in signature.variables if v.name == "conv4/weight:0"]
    edited = variable.numpy()
    edited.flat[0] += 1.0
    variable.assign(edited)
    tampered = tmp_path / "t.savedmodel"
    tf.saved_model.save(loaded, str(tampered), signatures=loaded.signatures)

    located = api.validate(source, tampered, locate=True).locate

    assert located is not None and located.found and located.method == "names"
    assert (located.node, located.op, located.inputs_ok) == ("conv4", "Conv", True)
    # Matched through the op's scope: the TensorFlow tensor that computes conv4's output.
    assert located.converted_name is not None and "/conv4/" in located.converted_name


def test_a_weight_edited_in_a_core_ml_package_is_located_at_the_conv_reading_it(tmp_path):
    pytest.importorskip("coremltools", reason="the Core ML backend needs coremltools")
    from coremltools.proto import Model_pb2

    source = conv_chain(tmp_path / "m.onnx")
    converted = tmp_path / "m.mlpackage"
    api.convert(source, converted)
    data = converted / "Data" / "com.apple.CoreML"
    spec = Model_pb2.Model()
    spec.ParseFromString((data / "model.mlmodel").read_bytes())
    function = spec.mlProgram.functions["main"]
    (constant,) = [
        op
        for op in function.block_specializations[function.opset].operations
        if op.type == "const" and op.outputs[0].name == "conv1_weight"
    ]
    # weight.bin: a 64-byte header per blob whose bytes 16..24 hold the data's offset.
    header = constant.attributes["val"].blobFileValue.offset
    weights = bytearray((data / "weights" / "weight.bin").read_bytes())
    start = int(np.frombuffer(bytes(weights[header + 16 : header + 24]), np.uint64)[0])
    first = np.frombuffer(bytes(weights[start : start + 4]), np.float32)[0]
    weights[start : start + 4] = np.float32(first + 1.0).tobytes()
    (data / "weights" / "weight.bin").write_bytes(bytes(weights))

    located = api.validate(source, converted, locate=True).locate

    assert located is not None and located.found
    assert (located.node, located.op, located.inputs_ok) == ("conv1", "Conv", True)
    assert [i.name for i in located.inputs if not i.ok] == ["conv1.weight"]
    # Core ML cannot run here: a bisection's prefixes are written, imported back and run in the
    # IR; the backend's own output matches, so the edit is reported as made after conversion.
    bisected = api.validate(source, converted, locate=True, locate_method="bisection").locate
    assert bisected is not None and not bisected.found and bisected.conversions == 1
    assert "differs from what the backend makes now" in bisected.note
