"""Input/output names Core ML forbids: renamed in the package, and the CLI says how (one warning
line on stderr, ``renamed_io`` in ``--json``), checked against the package's own spec."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from unframe.backends.coreml.native import load_spec
from unframe.cli.main import cli


def _write_model(path: Path, inputs: list[str], output: str) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", inputs, [output], name="add")],
        "names",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 3]) for name in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [2, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def _convert(source: Path, target: Path) -> tuple[dict[str, object], list[str]]:
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(target), "--to", "coreml", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr.splitlines()


def test_forbidden_names_are_reported_with_what_the_package_calls_them(tmp_path: Path) -> None:
    source, target = tmp_path / "names.onnx", tmp_path / "names.mlpackage"
    _write_model(source, ["in.put:0", "plain"], "out/put:0")
    payload, stderr = _convert(source, target)

    description = load_spec(target).description
    package_inputs = [feature.name for feature in description.input]
    (package_output,) = [feature.name for feature in description.output]
    assert "plain" in package_inputs and "in.put:0" not in package_inputs
    (renamed_input,) = [name for name in package_inputs if name != "plain"]
    expected = {"in.put:0": renamed_input, "out/put:0": package_output}
    assert payload["renamed_io"] == expected
    assert renamed_input == "in_put_0"  # what the brief's example shows a user
    lines = [line for line in stderr if "renamed" in line]
    assert len(lines) == 1, stderr
    assert "'in.put:0' -> 'in_put_0'" in lines[0] and "'out/put:0'" in lines[0]
    assert "plain" not in lines[0]


@pytest.mark.parametrize("names", [["x", "y"], ["image_in", "bias"]])
def test_allowed_names_report_nothing(names: list[str], tmp_path: Path) -> None:
    source, target = tmp_path / "ok.onnx", tmp_path / "ok.mlpackage"
    _write_model(source, names, "total")
    payload, stderr = _convert(source, target)
    assert "renamed_io" not in payload
    assert not [line for line in stderr if "renamed" in line], stderr
    assert [f.name for f in load_spec(target).description.input] == names
