"""Test helpers: onnx's shipped models and small hand-built ONNX models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

ONNX_LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def light_model(name: str) -> Path:
    path = ONNX_LIGHT / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path.name} is not shipped with this onnx build")
    return path


def tiny_model(ops: tuple[str, ...] = ("Relu",), opset: int = 18) -> onnx.ModelProto:
    """x -> op_1 -> op_2 -> ... -> y, on a [2, 3] float input with a symbolic batch."""
    nodes = []
    previous = "x"
    for index, op in enumerate(ops):
        output = "y" if index == len(ops) - 1 else f"t{index}"
        nodes.append(helper.make_node(op, [previous], [output], name=f"{op.lower()}_{index}"))
        previous = output
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def linear_model(weight: np.ndarray) -> onnx.ModelProto:
    """y = x @ W + 1, with W an initializer (so a test can perturb the weights)."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
            helper.make_node("Add", ["xw", "one"], ["y"], name="add"),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", weight.shape[1]])],
        initializer=[
            onnx.numpy_helper.from_array(weight.astype(np.float32), "W"),
            onnx.numpy_helper.from_array(np.ones((1,), np.float32), "one"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def as_ir(model: onnx.ModelProto) -> ir.Model:
    return ir.from_proto(model)


def light_model_data(name: str) -> tuple[Path, dict[str, np.ndarray], list[np.ndarray]]:
    """A light_*.onnx model, the input onnx's runner feeds it and the outputs onnx stored.

    onnx's backend runner feeds ``arange(n).reshape(shape) / n`` (float32) to each non-initializer
    input, dims without a value taken as 1 (``Runner.generate_dummy_data(random=False)``).
    """
    path = light_model(name)
    proto = onnx.load(path, load_external_data=False)
    initializers = {init.name for init in proto.graph.initializer}
    inputs = {}
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim
        )
        count = int(np.prod(dims))
        inputs[value.name] = (np.arange(count).reshape(dims) / count).astype(np.float32)
    expected = [
        onnx.numpy_helper.to_array(
            onnx.load_tensor(str(ONNX_LIGHT / f"light_{name}_output_{i}.pb"))
        )
        for i in range(len(proto.graph.output))
    ]
    return path, inputs, expected


def assert_same_outputs(
    actual: list[np.ndarray], expected: list[np.ndarray], *, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """``actual`` matches ``expected`` output by output: count, element type, then values."""
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """The address ranges this process maps from ``path`` (the kernel's ``/proc/self/maps``)."""
    target = str(path.resolve())
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == target:
                start, end = (int(bound, 16) for bound in parts[0].split("-"))
                ranges.append((start, end))
    return ranges
