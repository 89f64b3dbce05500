"""`unframe validate` says "outputs match" only when they do (issue 10, item 9).

Each model pair is run by onnxruntime here too, so the expected verdict and figures come from an
independent run, not from unframe's own comparison.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_ort(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def one_node_model(
    op: str, out_type: int, constant: np.ndarray | None, in_type: int = TensorProto.FLOAT
) -> onnx.ModelProto:
    """y = op(x, c) (or op(x, x) without a constant) on a [2, 3] input."""
    inputs = ["x", "c"] if constant is not None else ["x", "x"]
    initializer = [numpy_helper.from_array(constant, "c")] if constant is not None else []
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"])],
        "one",
        [helper.make_tensor_value_info("x", in_type, [2, 3])],
        [helper.make_tensor_value_info("y", out_type, [2, 3])],
        initializer=initializer,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


# -- the tampered Conv ------------------------------------------------------------------------


@pytest.fixture
def small_cnn(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A random-init CNN with small weights (outputs about 1e-2), its copy, a tampered copy.

    Returns (original, untampered copy, copy with +1.0 on every weight of the middle Conv,
    inputs .npz).
    """
    torch = pytest.importorskip("torch", reason="the CNN is built and exported with torch")
    torch.manual_seed(0)
    channels = [3, 8, 8, 8, 8, 4]
    layers: list = []
    for index in range(5):
        conv = torch.nn.Conv2d(channels[index], channels[index + 1], 3, padding=1)
        with torch.no_grad():
            conv.weight.normal_(0.0, 7e-4)
            conv.bias.normal_(0.0, 1e-2)
        layers += [conv, torch.nn.ReLU()] if index < 4 else [conv]
    module = torch.nn.Sequential(*layers).eval()
    original = tmp_path / "orig.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 3, 16, 16),),
            str(original),
            input_names=["x"],
            output_names=["y"],
            dynamo=False,
        )
    model = onnx.load(original)
    save(model, tmp_path / "copy.onnx")
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert len(convs) == 5
    weight_name = convs[2].input[1]
    (initializer,) = [i for i in model.graph.initializer if i.name == weight_name]
    tampered = numpy_helper.to_array(initializer) + np.float32(1.0)
    initializer.CopyFrom(numpy_helper.from_array(tampered.astype(np.float32), weight_name))
    save(model, tmp_path / "tampered.onnx")
    inputs = tmp_path / "inputs.npz"
    rng = np.random.default_rng(0)
    np.savez(inputs, x=rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    return original, tmp_path / "copy.onnx", tmp_path / "tampered.onnx", inputs


def test_a_conv_with_every_weight_plus_one_fails_validation(small_cnn):
    original, _, tampered, inputs = small_cnn
    x = np.load(inputs)["x"]
    want = run_ort(original, {"x": x})
    got = run_ort(tampered, {"x": x})
    # The premise, checked by onnxruntime: outputs about 1e-2, and atol/rtol alone see nothing.
    assert 1e-3 < float(np.abs(want).mean()) < 1e-1
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)
    diff = float(np.abs(got - want).max())
    rel_to_scale = diff / float(want.astype(np.float64).std())
    assert rel_to_scale > 1e-4  # above rtol: over a tenth of a per mille of the output's spread

    result = invoke("validate", str(original), str(tampered), "--inputs", str(inputs), "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert not data["ok"]
    (output,) = data["outputs"]
    assert not output["ok"] and output["mismatched"] > 0
    assert output["max_abs"] == pytest.approx(diff, rel=1e-3)
    assert output["rel_to_scale"] == pytest.approx(rel_to_scale, rel=1e-3)

    table = invoke("validate", str(original), str(tampered), "--inputs", str(inputs))
    assert table.exit_code == 1 and "outputs differ" in table.stdout and "err/std" in table.stdout


def test_an_untampered_copy_passes(small_cnn):
    original, copy, _, inputs = small_cnn
    result = invoke("validate", str(original), str(copy), "--inputs", str(inputs), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["problems"] == [] and data["warnings"] == []
    (output,) = data["outputs"]
    assert output["max_abs"] == 0.0 and output["rel_to_scale"] == 0.0 and output["flags"] == []
    assert output["dtype"] == output["reference_dtype"] == "float32"


# -- exact integers, dtypes, nothing compared, saturation ---------------------------------------


def test_int64_outputs_that_differ_by_9_in_100000_fail(tmp_path):
    # y = x + c with x in [0, 4): about 100000, where rtol 1e-4 allowed a difference of 10.
    reference = save(
        one_node_model(
            "Add", TensorProto.INT64, np.full((2, 3), 100000, np.int64), TensorProto.INT64
        ),
        tmp_path / "a.onnx",
    )
    candidate = save(
        one_node_model(
            "Add", TensorProto.INT64, np.full((2, 3), 100009, np.int64), TensorProto.INT64
        ),
        tmp_path / "b.onnx",
    )
    result = invoke("validate", str(reference), str(candidate), "--json")
    assert result.exit_code == 1, result.output
    (output,) = json.loads(result.stdout)["outputs"]
    assert output["mismatched"] == 6 and output["max_abs"] == 9.0
    assert output["dtype"] == output["reference_dtype"] == "int64"


def test_float_zeros_against_bools_fail_on_dtype(tmp_path):
    # x * 0 is float zeros; Less(x, x) is all False: equal as numbers, not as outputs.
    reference = save(
        one_node_model("Mul", TensorProto.FLOAT, np.zeros((2, 3), np.float32)), tmp_path / "a.onnx"
    )
    candidate = save(one_node_model("Less", TensorProto.BOOL, None), tmp_path / "b.onnx")
    result = invoke("validate", str(reference), str(candidate), "--json")
    assert result.exit_code == 1, result.output
    (output,) = json.loads(result.stdout)["outputs"]
    assert output["dtype"] == "bool" and output["reference_dtype"] == "float32"
    assert "dtype" in output["note"] and not output["ok"]

    table = invoke("validate", str(reference), str(candidate))
    assert "FAIL" in table.stdout and "bool" in table.stdout and "outputs differ" in table.stdout


def test_two_models_without_outputs_do_not_match(tmp_path):
    # A graph whose only node feeds nothing the graph outputs: onnxruntime runs it, returning [].
    graph = helper.make_graph(
        [], "empty", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], []
    )
    path = tmp_path / "empty.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    result = invoke("validate", str(path), str(path), "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert not data["ok"] and data["outputs"] == []
    assert "nothing was compared" in data["problems"][0]


def test_a_saturated_softmax_passes_with_a_flag_and_a_hint_for_real_inputs(tmp_path):
    # Softmax(x @ W) with W = 100 * identity: the rows are one-hot for any normal input, so +1.0
    # on a weight changes nothing the comparison can see. It must say so.
    def softmax_model(weight: np.ndarray) -> onnx.ModelProto:
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "W"], ["logits"]),
                helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
            ],
            "softmax",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])],
            initializer=[numpy_helper.from_array(weight.astype(np.float32), "W")],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    weight = 100.0 * np.eye(3)
    reference = save(softmax_model(weight), tmp_path / "a.onnx")
    tampered_weight = weight.copy()
    tampered_weight[0, 1] += 1.0
    candidate = save(softmax_model(tampered_weight), tmp_path / "b.onnx")
    inputs = tmp_path / "inputs.npz"
    # Rows whose largest entry leads by at least 0.5: every softmax row is one-hot within 1e-21.
    x = np.array(
        [[2.0, 0.1, -1.0], [0.0, 1.5, 0.3], [-0.5, -1.0, 0.9], [1.0, 0.2, 0.4]], np.float32
    )
    np.savez(inputs, x=x)
    want = run_ort(reference, {"x": x})
    got = run_ort(candidate, {"x": x})
    assert np.array_equal(np.round(want), np.eye(3)[x.argmax(axis=1)])  # saturated
    assert np.abs(got - want).max() < 1e-8

    result = invoke("validate", str(reference), str(candidate), "--inputs", str(inputs), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (output,) = data["outputs"]
    assert output["flags"] == ["saturated"]
    (warning,) = data["warnings"]
    assert "saturated" in warning and "--inputs" in warning

    table = invoke("validate", str(reference), str(candidate), "--inputs", str(inputs))
    assert "saturated" in table.stdout and "--inputs" in table.stdout
