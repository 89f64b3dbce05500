"""``unframe run -o out.npz`` writes outputs numpy can read back as numbers.

numpy's ``.npz`` has no bfloat16 or float8: ``np.savez`` wrote them as raw ``V`` bytes. They are
written as float32, which holds each of their values exactly, and a note says so. The oracle:
ml_dtypes' own rounding of the same float32 input to the narrow type (onnxruntime runs the Cast).
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from unframe.cli.main import cli

X = np.array([[0.1, -1.7, 3.14159, 250.0], [1e-3, -0.5, 7.25, -448.0]], np.float32)


@pytest.mark.parametrize(
    ("onnx_type", "narrow"),
    [
        (TensorProto.BFLOAT16, ml_dtypes.bfloat16),
        (TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
        (TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2),
    ],
    ids=["bfloat16", "float8_e4m3fn", "float8_e5m2"],
)
def test_narrow_float_outputs_are_written_as_exact_float32(
    tmp_path: Path, onnx_type: int, narrow: type
) -> None:
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=onnx_type)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(X.shape))],
        [helper.make_tensor_value_info("y", onnx_type, list(X.shape))],
    )
    model_path, inputs, out = tmp_path / "m.onnx", tmp_path / "in.npz", tmp_path / "out.npz"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), model_path)
    np.savez(inputs, x=X)
    result = CliRunner().invoke(
        cli, ["run", str(model_path), "--inputs", str(inputs), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as data:
        y = data["y"]
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, X.astype(narrow).astype(np.float32))
    assert "written as float32" in result.stderr and np.dtype(narrow).name in result.stderr
