"""The CLI through click's CliRunner: JSON shapes, exit codes, one-line errors, no partial output."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from unframe.cli.main import cli

from helpers import light_model, linear_model, tiny_model


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_convert_light_resnet50_to_opset_13_validates(tmp_path):
    source = light_model("resnet50")
    out = tmp_path / "resnet50_op13.onnx"
    result = invoke(
        "convert",
        "--from",
        "onnx",
        "--to",
        "onnx",
        "--opset",
        "13",
        str(source),
        "-o",
        str(out),
        "--validate",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"ok", "from", "to", "output", "seconds", "validation"}
    assert data["ok"] and data["from"] == "onnx" and data["to"] == "onnx"
    assert onnx.load(out).opset_import[0].version == 13
    (output,) = data["validation"]["outputs"]
    assert set(output) >= {"name", "shape", "max_abs", "max_rel", "mismatched", "total", "ok"}
    assert output["shape"] == [1, 1000] and output["ok"] and output["mismatched"] == 0


def test_convert_detects_frameworks_from_paths_and_prints_a_table(tmp_path, write_model):
    source = write_model(tiny_model(("Relu", "Sigmoid")))
    result = invoke("convert", str(source), "-o", str(tmp_path / "out.onnx"), "--validate")
    assert result.exit_code == 0, result.output
    assert "onnx -> onnx" in result.stdout and "max abs err" in result.stdout


def test_validate_reports_a_mismatch_with_exit_code_1(tmp_path, write_model):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    reference = write_model(linear_model(weight), "a.onnx")
    perturbed = weight.copy()
    perturbed[0, 0] += 0.5  # changes column 0 of y only
    candidate = write_model(linear_model(perturbed), "b.onnx")
    result = invoke("validate", str(reference), str(candidate), "--input", "x=4,2", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) >= {"ok", "how", "outputs"} and not data["ok"]
    (output,) = data["outputs"]
    assert output["shape"] == [4, 3] and output["total"] == 12
    # Exactly the elements of column 0 whose x[:, 0] is large enough to exceed the tolerance.
    assert 1 <= output["mismatched"] <= 4


def test_validate_uses_inputs_from_an_npz_file(tmp_path, write_model):
    reference = write_model(linear_model(np.eye(2)), "a.onnx")
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.full((5, 2), 3.0, np.float32))
    result = invoke("validate", str(reference), str(reference), "--inputs", str(inputs), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["outputs"][0]["shape"] == [5, 2]


def test_roundtrip_via_onnx_reports_outputs_and_stats(write_model):
    source = write_model(linear_model(np.eye(3)))
    result = invoke("roundtrip", str(source), "--via", "onnx", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["stats"]["before"]["nodes"] == 2
    assert data["stats"]["after"]["parameters"] == 10


def test_inspect_shows_inputs_ops_and_parameters(write_model):
    result = invoke("inspect", str(write_model(linear_model(np.eye(3)))), "--json")
    data = json.loads(result.stdout)
    assert data["inputs"] == [{"name": "x", "shape": ["batch", 3], "dtype": "float"}]
    assert data["ops"] == {"Add": 1, "MatMul": 1}
    assert data["parameters"] == 10 and data["parameter_bytes"] == 40
    assert data["opset"] == {"ai.onnx": 18}


def test_frameworks_lists_onnx_with_its_formats():
    data = json.loads(invoke("frameworks", "--json").stdout)
    onnx_row = next(row for row in data if row["name"] == "onnx")
    assert onnx_row["reads"] == [".onnx"] and onnx_row["run"] is True


# -- bad input: one message, a documented exit code, no traceback, nothing written -------------


def assert_one_clean_error(result, exit_code: int, *words: str) -> str:
    assert result.exit_code == exit_code, result.output
    message = result.stderr.strip()
    assert "Traceback" not in result.output + result.stderr
    for word in words:
        assert word in message, message
    return message


def test_missing_file(tmp_path):
    result = invoke("convert", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o.onnx"))
    assert_one_clean_error(result, 2, "nope.onnx", "no such file")
    assert not (tmp_path / "o.onnx").exists()


def test_corrupt_onnx_gives_exit_2_and_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(light_model("squeezenet").read_bytes()[:5000])
    result = invoke("convert", str(corrupt), "-o", str(tmp_path / "o.onnx"))
    message = assert_one_clean_error(result, 2, "corrupt.onnx", "not a readable ONNX model")
    assert len(message.splitlines()) == 1
    assert list(tmp_path.iterdir()) == [corrupt]


def test_unknown_format(tmp_path):
    odd = tmp_path / "model.xyz"
    odd.write_text("hello")
    result = invoke("convert", str(odd), "-o", str(tmp_path / "o.onnx"))
    assert_one_clean_error(result, 2, "model.xyz", "--from")


def test_wrong_from_flag_is_bad_usage(tmp_path, write_model):
    source = write_model(tiny_model())
    result = invoke("convert", "--from", "mxnet", str(source), "-o", str(tmp_path / "o.onnx"))
    assert result.exit_code == 2 and "mxnet" in result.stderr


def test_existing_output_is_not_clobbered_without_force(tmp_path, write_model):
    source = write_model(tiny_model())
    out = tmp_path / "out.onnx"
    out.write_text("keep me")
    result = invoke("convert", str(source), "-o", str(out))
    assert_one_clean_error(result, 2, "already exists", "--force")
    assert out.read_text() == "keep me"
    assert invoke("convert", str(source), "-o", str(out), "--force").exit_code == 0
    assert onnx.load(out).graph.node[0].op_type == "Relu"


def test_opset_downgrade_that_onnx_cannot_do_is_unsupported(tmp_path, write_model):
    source = write_model(tiny_model(("Relu",), opset=18))
    out = tmp_path / "out.onnx"
    result = invoke("convert", str(source), "-o", str(out), "--opset", "3")
    assert_one_clean_error(result, 3, "opset 3")
    assert not out.exists()


@pytest.mark.usefixtures("toy_frameworks")
def test_every_unsupported_op_is_listed_at_once_before_writing(tmp_path, write_model):
    source = write_model(tiny_model(("Relu", "Tanh", "Sigmoid", "Tanh")))
    out = tmp_path / "out.toy"
    result = invoke("convert", str(source), "-o", str(out))
    message = assert_one_clean_error(
        result, 3, "toy cannot export 2 op type(s) on 3 node(s)", "Sigmoid x1", "Tanh x2"
    )
    for node in ("tanh_1", "sigmoid_2", "tanh_3"):
        assert f"node {node!r}" in message
    assert "relu_0" not in message
    assert not out.exists()


@pytest.mark.usefixtures("toy_frameworks")
def test_third_party_adapter_converts_through_the_registry(tmp_path, write_model):
    source = write_model(tiny_model(("Relu",), opset=14))
    out = tmp_path / "out.toy"
    result = invoke("convert", str(source), "-o", str(out), "--validate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["to"] == "toy"


@pytest.mark.usefixtures("toy_frameworks")
def test_missing_framework_says_which_extra_to_install(tmp_path, write_model):
    source = write_model(tiny_model())
    result = invoke("convert", str(source), "-o", str(tmp_path / "out.missing"))
    assert_one_clean_error(result, 4, "not installed", "unframe[missing]")


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "inspect", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
