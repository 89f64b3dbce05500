"""No fixed tax: ``--help`` and ONNX -> ONNX / ONNX -> Caffe2 never import the heavy frameworks,
nor sympy, which onnx_ir imports at its top but these conversions never need, nor the parts of
onnxscript its optimizer does not use: the script compiler with every opset module, and onnx's
reference kernels, until a fold needs one (``shared_ir/lazy_imports.py``).

Each case runs in a fresh interpreter (the test process itself has imported everything) and reads
``sys.modules`` at exit, after the command has run to completion through the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

HEAVY = (
    "torch",
    "tensorflow",
    "coremltools",
    "sympy",
    "onnxscript.onnx_opset",
    "onnxscript._internal.main",
    "onnx.reference.ops",
)

_PROBE = """
import atexit, sys
atexit.register(lambda: print("LOADED=" + ",".join(
    name for name in {heavy!r} if name in sys.modules)))
sys.argv = ["unframe", *{argv!r}]
from unframe.cli.main import main
main()
"""


def _small_model(path: Path) -> None:
    weight = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8) / 64, "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 8])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _loaded_after(argv: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY, argv=argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = [text for text in done.stdout.splitlines() if text.startswith("LOADED=")][-1]
    return [name for name in line.removeprefix("LOADED=").split(",") if name]


def test_help_imports_no_framework() -> None:
    assert _loaded_after(["--help"]) == []


@pytest.mark.parametrize(
    ("target", "suffix"), [("onnx", "out.onnx"), ("caffe2", "out_net")], ids=["onnx", "caffe2"]
)
def test_onnx_source_conversion_imports_no_framework(
    tmp_path: Path, target: str, suffix: str
) -> None:
    source = tmp_path / "model.onnx"
    _small_model(source)
    argv = ["convert", str(source), "-o", str(tmp_path / suffix), "--to", target, "--validate"]
    assert _loaded_after(argv) == []
    assert (tmp_path / suffix).exists()
