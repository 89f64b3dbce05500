"""The ``pytorch`` adapter: detection, lazy torch import, run_ir, unsupported-op reporting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.converters.adapters.pytorch import PyTorchFramework
from unframe.converters.framework import ConvertOptions
from unframe.shared_ir.errors import UnsupportedOpsError


def test_adapter_import_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from unframe.converters.adapters.pytorch import PyTorchFramework\n"
        "PyTorchFramework().matches(__import__('pathlib').Path('m.pt2'), for_writing=True)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_matches_files_and_factories() -> None:
    framework = PyTorchFramework()
    assert framework.matches(Path("model.pt2"), for_writing=True)
    assert not framework.matches(Path("model.pt"), for_writing=True)
    for name in (
        "model.pt2",
        "model.pt",
        "model.ts",
        "py:models/net.py:make_model",
        "py:pkg.mod:b",
    ):
        assert framework.matches(Path(name), for_writing=False), name
    # Without ``py:``, a colon path is a path (the old ``file.py:f`` form needs the file to exist).
    for name in ("model.onnx", "model.onnx:weights", "pkg.mod:build", "models/net.py:make_model"):
        assert not framework.matches(Path(name), for_writing=False), name


def _model(op: str, **attrs: object) -> ir.Model:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ir.from_proto(model)


def test_run_ir_matches_numpy_and_keys_outputs_by_name() -> None:
    pytest.importorskip("torch")
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 5.0]], dtype=np.float32)
    outputs = PyTorchFramework().run_ir(_model("Relu"), {"x": x}, ConvertOptions())
    assert list(outputs) == ["y"]
    np.testing.assert_array_equal(outputs["y"], np.maximum(x, 0))


def test_unsupported_ops_are_all_listed_before_building() -> None:
    pytest.importorskip("torch")
    from unframe.backends.pytorch import to_torch

    model = _model("Relu")
    graph = model.graph
    made_up = ir.Node("com.example", "Frobnicate", [graph.outputs[0]], name="frob")
    graph.append(made_up)
    framework = PyTorchFramework()
    missing = framework.unsupported_nodes(model)
    assert [(m.node, m.op_type, m.domain) for m in missing] == [
        ("frob", "Frobnicate", "com.example")
    ]
    with pytest.raises(UnsupportedOpsError, match="Frobnicate"):
        to_torch(model)


def test_save_then_run_through_the_adapter(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    framework = PyTorchFramework()
    path = tmp_path / "relu.pt2"
    framework.save(_model("LeakyRelu", alpha=0.5), path, ConvertOptions())
    x = np.array([[-2.0, 0.0, 2.0], [3.0, -4.0, 5.0]], dtype=np.float32)
    outputs = framework.run(path, {"x": x})
    np.testing.assert_allclose(outputs["y"], np.where(x < 0, 0.5 * x, x))


def test_runs_torchscript_files(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Scale(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 3.0 + 1.0

    path = tmp_path / "scale.pt"
    torch.jit.script(Scale()).save(str(path))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    outputs = PyTorchFramework().run(path, {"x": x})
    np.testing.assert_allclose(next(iter(outputs.values())), x * 3.0 + 1.0)


def test_dynamic_option_makes_static_axes_dynamic(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    framework = PyTorchFramework()
    path = tmp_path / "relu.pt2"
    framework.save(_model("Relu"), path, ConvertOptions(dynamic={"x": (0,)}))
    x = np.linspace(-3, 3, 15, dtype=np.float32).reshape(5, 3)  # the IR says [2, 3]
    np.testing.assert_array_equal(framework.run(path, {"x": x})["y"], np.maximum(x, 0))
