"""A compiled Core ML model (``.mlmodelc``) given without ``--from``: one line naming the file,
saying it is a compiled Core ML model and to convert the package it was compiled from, exit 2
(bad input, as with ``--from coreml``), nothing written; and ``-o x.mlmodelc`` is refused the same
way before anything is converted.

coremltools cannot compile a model on Linux, so the bundles here are laid out by hand as Xcode's
``coremlcompiler`` writes them (ML Program: ``model.mil``, ``coremldata.bin``,
``metadata.json``, ``analytics/coremldata.bin``, ``weights/weight.bin``; NeuralNetwork:
``model.espresso.net``/``.shape``/``.weights`` beside ``coremldata.bin``), with placeholder bytes:
unframe must refuse the bundle from its name and layout, before reading any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper

from unframe.cli.main import cli

_MLPROGRAM_FILES = {
    "coremldata.bin": b"\x00" * 64,
    "metadata.json": json.dumps([{"shortDescription": "", "specificationVersion": 7}]).encode(),
    "model.mil": b"program(1.0)\n[buildInfo = dict<tensor<string, []>, tensor<string, []>>({})]\n"
    b"{\n    func main<ios15>(tensor<fp32, [1, 3]> x) {\n"
    b'        tensor<fp32, [1, 3]> y = relu(x = x)[name = tensor<string, []>("y")];\n'
    b"    } -> (y);\n}\n",
    "analytics/coremldata.bin": b"\x00" * 32,
    "weights/weight.bin": b"\x00" * 64,
}
_NEURAL_NETWORK_FILES = {
    "coremldata.bin": b"\x00" * 64,
    "metadata.json": json.dumps([{"specificationVersion": 4}]).encode(),
    "model.espresso.net": b'{"layers": [], "format_version": 200}',
    "model.espresso.shape": b'{"layer_shapes": {}}',
    "model.espresso.weights": b"\x00" * 16,
    "analytics/coremldata.bin": b"\x00" * 32,
    "neural_network_optionals/coremldata.bin": b"\x00" * 16,
}


def _bundle(folder: Path, files: dict[str, bytes], name: str = "model.mlmodelc") -> Path:
    bundle = folder / name
    for relative, data in files.items():
        (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
        (bundle / relative).write_bytes(data)
    return bundle


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_error_line(result: Result, source: Path) -> str:
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(source) in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "files", [_MLPROGRAM_FILES, _NEURAL_NETWORK_FILES], ids=["mlprogram", "neuralnetwork"]
)
@pytest.mark.parametrize("output", ["out.onnx", "out.mlpackage", "out.tflite"])
def test_compiled_bundle_without_from_exits_2_naming_it(
    tmp_path: Path, files: dict[str, bytes], output: str
) -> None:
    source = _bundle(tmp_path, files)
    before = _tree(tmp_path)
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(tmp_path / output)], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    line = _one_error_line(result, source)
    assert "compiled Core ML model (.mlmodelc)" in line
    assert "cannot tell which framework" not in line
    assert ".mlpackage or .mlmodel it was compiled from" in line
    assert _tree(tmp_path) == before  # nothing written, the bundle untouched


def test_renamed_compiled_bundle_is_known_by_its_layout(tmp_path: Path) -> None:
    """A bundle renamed without its suffix is still told apart by its ``coremldata.bin``."""
    source = _bundle(tmp_path, _MLPROGRAM_FILES, name="exported_model")
    result = CliRunner().invoke(cli, ["inspect", str(source)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "compiled Core ML model" in _one_error_line(result, source)


def _relu_onnx(folder: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    source = folder / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    return source


def test_writing_a_compiled_bundle_is_refused_before_converting(tmp_path: Path) -> None:
    source = _relu_onnx(tmp_path)
    target = tmp_path / "relu.mlmodelc"
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(target)], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    line = _one_error_line(result, target)
    assert "unframe does not write" in line and ".mlpackage" in line
    assert _tree(tmp_path) == ["relu.onnx"]


@pytest.mark.parametrize("name", ["relu.mlmodelc", "relu.bin"])
def test_a_coreml_target_not_named_mlpackage_is_bad_input(tmp_path: Path, name: str) -> None:
    """With --to coreml the name is not what picks the framework; coremltools would then fail
    to save the package (exit 5, "a bug in unframe"): refused by name instead, nothing written."""
    pytest.importorskip("coremltools", reason="the coreml extra is not installed")
    source = _relu_onnx(tmp_path)
    target = tmp_path / name
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(target), "--to", "coreml"], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    line = _one_error_line(result, source)  # the conversion's bad input names its source
    assert f"cannot write {name}" in line and "ends in .mlpackage" in line
    assert ("xcrun coremlcompiler compile" in line) == name.endswith(".mlmodelc")
    assert _tree(tmp_path) == ["relu.onnx"]
