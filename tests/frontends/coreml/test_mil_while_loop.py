"""The frontend on MIL's while_loop (read as ONNX's Loop), checked on packages coremltools' own
PyTorch converter writes from scripted loops whose trip count depends on the data (one whose
condition is a short-circuit ``and``, written as a cond inside the loop's condition block), run
for zero, some and the most iterations and compared with torch. Every MIL op type the backend
emits for an ONNX Loop must appear in those packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from tests.frontends.coreml.coreml_packages import (
    package_op_types,
    program_op_types,
    write_mlprogram,
)
from unframe.backends.coreml.native import coremltools
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.runner import run_onnxruntime

torch = pytest.importorskip("torch", reason="the packages are converted from PyTorch models")


class GrowUntil(torch.nn.Module):
    """Grows y until it is large or six steps have run (a logical_and of two tensors), each
    step's y collected by concatenation (a loop variable whose first dim grows, symbolic in MIL,
    started with a dummy row sliced off after the loop)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        collected = torch.zeros(1, 2, 3)
        steps = torch.zeros(1)
        while bool(torch.logical_and(y.abs().sum().reshape(1) < 50.0, steps < 6.0).squeeze()):
            y = y * 1.5 + torch.sigmoid(x) * steps
            collected = torch.cat([collected, y.unsqueeze(0)], 0)
            steps = steps + 1
        return collected[1:]


class ShortCircuit(torch.nn.Module):
    """The same with Python's ``and`` on an int counter: coremltools writes a cond."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        steps = 0
        while steps < 6 and bool(y.abs().sum() < 50.0):
            y = y * 1.5 + torch.sigmoid(x) * steps
            steps += 1
        return y


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    ct = coremltools()
    made = {}
    for factory in (GrowUntil, ShortCircuit):
        scripted = torch.jit.script(factory())
        path = write_mlprogram(
            scripted,
            tmp_path_factory.mktemp(factory.__name__) / "loop.mlpackage",
            [ct.TensorType(name="x", shape=(2, 3))],
        )
        made[factory.__name__] = (path, scripted)
    return made


@pytest.mark.parametrize("name", ["GrowUntil", "ShortCircuit"])
def test_coremltools_while_loop_matches_torch(name: str, packages: dict[str, Any]) -> None:
    path, scripted = packages[name]
    assert "while_loop" in package_op_types(path)
    model = load_coreml(path)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 3)).astype(np.float32)
    for x in (base * 30, base, base * 0.01):  # no iteration, some, stopped by the count
        (actual,) = run_onnxruntime(model, {"x": x}).values()
        expected = scripted(torch.from_numpy(x)).numpy()
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def _onnx_loop() -> ir.Model:
    """An ONNX Loop with a trip count, a condition and a scan output, its body of ops the
    packages hold."""
    body = helper.make_graph(
        [
            helper.make_node("Mul", ["v_in", "rate"], ["grown"]),
            helper.make_node("Add", ["grown", "w"], ["v_out"]),
            helper.make_node("Abs", ["v_out"], ["size_each"]),
            helper.make_node("ReduceSum", ["size_each"], ["size"], keepdims=0),
            helper.make_node("Less", ["size", "limit"], ["go"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [2, 3]),
        ],
        [
            helper.make_tensor_value_info("go", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("grown", TensorProto.FLOAT, [2, 3]),
        ],
        [
            helper.make_tensor("rate", TensorProto.FLOAT, [], [1.5]),
            helper.make_tensor("limit", TensorProto.FLOAT, [], [50.0]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Sigmoid", ["x"], ["w"]),
            helper.make_node("Loop", ["m", "keep", "x"], ["y", "ys"], body=body),
        ],
        "loop",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("m", TensorProto.INT64, []),
            helper.make_tensor_value_info("keep", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "ys")],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]))


def test_every_mil_op_a_loop_emits_is_in_the_coremltools_packages(
    packages: dict[str, Any],
) -> None:
    from unframe.backends.coreml.driver import export_mlprogram

    exported = export_mlprogram(_onnx_loop())
    emitted = program_op_types(exported.mlmodel._mil_program)
    covered = set().union(*(package_op_types(path) for path, _ in packages.values()))
    assert "while_loop" in emitted
    assert emitted - covered - {"const"} == set()
