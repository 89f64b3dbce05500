"""Core ML backend options (``ConvertOptions.extra``, the CLI's --precision and
--minimum-deployment-target): float16 compute written as float16 ops and validated against the
float32 source with float16's error; the deployment target recorded; bad values exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from unframe.backends.coreml.native import load_mil_program, load_spec
from unframe.cli.main import cli
from unframe.converters import api

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _op_dtypes(package: Path) -> dict[str, set[str]]:
    """Each MIL op type of the package's main function -> the dtypes of its outputs."""
    from coremltools.converters.mil.mil import types

    found: dict[str, set[str]] = {}
    for op in load_mil_program(package).functions["main"].operations:
        words = {types.builtin_to_string(var.dtype) for var in op.outputs}
        found.setdefault(op.op_type, set()).update(words)
    return found


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Conv -> Relu -> Softmax, float32 weights with more digits than float16 keeps."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Softmax", ["r"], ["y"], axis=1),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight, bias],
    )
    path = tmp_path_factory.mktemp("options") / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_float16_package_computes_in_float16(conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "half.mlpackage"
    with pytest.warns(UserWarning, match="float16 compute precision"):
        result = api.convert(conv_model, out, target="coreml", validate=True, precision="float16")
    dtypes = _op_dtypes(out)
    assert dtypes["conv"] == dtypes["relu"] == dtypes["softmax"] == {"fp16"}
    # The weights are float16 constants, not float32 ones cast at run time.
    assert "fp32" not in dtypes["const"]
    # Validation against the float32 source reports float16's error: there, and float16-sized.
    assert result.validation is not None
    (output,) = result.validation.outputs
    assert 1e-5 < output.max_abs < 1e-2


def test_float32_is_the_default_and_validates_at_float32(conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "full.mlpackage"
    result = api.convert(conv_model, out, target="coreml", validate=True)
    assert result.validation is not None and result.validation.ok
    dtypes = _op_dtypes(out)
    assert dtypes["conv"] == dtypes["softmax"] == {"fp32"}
    assert "cast" not in dtypes


@pytest.mark.parametrize(("target", "version"), [("iOS15", 6), ("iOS17", 8)])
def test_deployment_target_sets_the_specification_version(
    conv_model: Path, tmp_path: Path, target: str, version: int
) -> None:
    out = tmp_path / f"{target}.mlpackage"
    api.convert(conv_model, out, target="coreml", minimum_deployment_target=target)
    assert load_spec(out).specificationVersion == version


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--minimum-deployment-target", "iOS13"], "ML Programs need iOS15"),
        (["--minimum-deployment-target", "iOS99"], "unknown Core ML deployment target"),
    ],
)
def test_bad_option_values_exit_2_and_write_nothing(
    conv_model: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "bad.mlpackage"
    result = CliRunner().invoke(
        cli, ["convert", str(conv_model), "--to", "coreml", "-o", str(out), *flags]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_cli_precision_flag_reaches_the_backend(conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.mlpackage"
    args = ["convert", str(conv_model), "--to", "coreml", "-o", str(out), "--precision", "float16"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _op_dtypes(out)["conv"] == {"fp16"}
