"""Flexible shapes from ``--input``: a range ``LO..HI`` of a dynamic ONNX dim becomes the bounds of
its ``ct.RangeDim`` (read back from the written package with coremltools' ``get_spec()``), inputs
that share an ONNX symbol share the range, and without ``--input`` the defaults (1..8192) stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper

from unframe.backends.coreml.driver import FLEXIBLE_DIM_LIMIT
from unframe.backends.coreml.native import coremltools, quiet_stderr
from unframe.cli.main import cli
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.inputs import InputSpec, example_inputs

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


@pytest.fixture(scope="module")
def shared_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """out = x + y; x and y share the symbolic dims ``batch`` and ``seq``; z has a fixed 4."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "y"], ["s"]),
            helper.make_node("ReduceSum", ["z"], ["t"], keepdims=0),
            helper.make_node("Add", ["s", "t"], ["out"]),
        ],
        "shared",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path_factory.mktemp("flexible") / "shared.onnx"
    onnx.save(model, path)
    return path


def _convert(source: Path, package: Path, *extra: str) -> Result:
    args = ["convert", str(source), "-o", str(package), "--to", "coreml", *extra]
    return CliRunner().invoke(cli, args)


def _ranges(package: Path) -> dict[str, tuple[list[tuple[int, int]], list[int]]]:
    """Each input's (lower, upper) bounds per axis and its default shape, as Core ML reads them."""
    ct = coremltools()
    with quiet_stderr():
        spec: Any = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    found = {}
    for feature in spec.description.input:
        array = feature.type.multiArrayType
        bounds = [(int(r.lowerBound), int(r.upperBound)) for r in array.shapeRange.sizeRanges]
        found[feature.name] = (bounds, [int(d) for d in array.shape])
    return found


def test_input_ranges_become_the_range_dims_bounds(shared_batch: Path, tmp_path: Path) -> None:
    package = tmp_path / "ranged.mlpackage"
    result = _convert(shared_batch, package, "--input", "x=2..16,1..64", "--validate")
    assert result.exit_code == 0, result.output
    ranges = _ranges(package)
    # y shares x's symbols, so it shares the bounds given for x; defaults are the lower bounds.
    assert ranges["x"] == ([(2, 16), (1, 64)], [2, 1])
    assert ranges["y"] == ([(2, 16), (1, 64)], [2, 1])
    assert ranges["z"][1] == [4] and not ranges["z"][0]


def test_without_input_ranges_the_defaults_apply(shared_batch: Path, tmp_path: Path) -> None:
    package = tmp_path / "default.mlpackage"
    result = _convert(shared_batch, package)
    assert result.exit_code == 0, result.output
    default = [(1, FLEXIBLE_DIM_LIMIT), (1, FLEXIBLE_DIM_LIMIT)]
    assert _ranges(package)["x"] == (default, [1, 1])
    assert _ranges(package)["y"] == (default, [1, 1])


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (["--input", "x=2..16,?", "--input", "y=1..8,?"], "same range"),
        (["--input", "z=5..9"], "fixed at 4"),
        (["--input", "x=16..2,?"], "1 <= LO <= HI"),
        (["--input", "x=2..,?"], "not a range"),
    ],
)
def test_bad_ranges_exit_2_writing_nothing(
    shared_batch: Path, tmp_path: Path, given: list[str], words: str
) -> None:
    package = tmp_path / "bad.mlpackage"
    result = _convert(shared_batch, package, *given)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert not package.exists()


def test_range_parses_as_a_dynamic_dim_with_bounds() -> None:
    spec = InputSpec.parse("x=1..32,3,batch,?:float16")
    assert spec.shape == (None, 3, "batch", None)
    assert spec.bounds == ((1, 32), None, None, None)
    assert spec.dtype == np.dtype("float16")
    assert InputSpec.parse("x=1,3").bounds is None
    with pytest.raises(BadInputError):
        InputSpec.parse("x=0..4")


def test_example_inputs_take_a_ranges_lower_bound(shared_batch: Path) -> None:
    import onnx_ir as ir

    inputs = list(ir.load(shared_batch).graph.inputs)
    arrays = example_inputs(inputs, {"x": InputSpec.parse("x=3..9,5..6")})
    assert arrays["x"].shape == (3, 5)
