"""The PyTorch frontend runs torch.onnx's optimizer itself (rules looked up by op type), once.

The oracle is ``torch.onnx.export(optimize=True)``'s own graph for the same program, and torch's
own outputs run through onnxruntime.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx_ir as ir
import pytest

torch = pytest.importorskip("torch")

from unframe.frontends.pytorch import from_torch  # noqa: E402
from unframe.shared_ir.runner import run_reference  # noqa: E402


class Block(torch.nn.Module):
    """Linear layers (their weights transposed by the exporter), a scaled residual and a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.up = torch.nn.Linear(32, 64)
        self.gate = torch.nn.Linear(32, 64, bias=False)
        self.down = torch.nn.Linear(64, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.up(x) * torch.sigmoid(self.gate(x))
        return x + 0.5 * self.down(hidden).reshape(x.shape)


def test_frontend_graph_is_torch_onnx_optimized_graph() -> None:
    torch.manual_seed(0)
    module = Block().eval()
    x = torch.randn(2, 8, 32)
    program = torch.export.export(module, (x,), strict=False)
    reference = torch.onnx.export(program, dynamo=True, optimize=True)
    assert reference is not None

    model = from_torch(program)

    def op_counts(graph: ir.Graph) -> Counter[str]:
        return Counter(node.op_type for node in graph)

    assert op_counts(model.graph) == op_counts(reference.model.graph)
    shapes = {name: tuple(v.shape or ()) for name, v in model.graph.initializers.items()}
    expected = {
        name: tuple(v.shape or ()) for name, v in reference.model.graph.initializers.items()
    }
    assert shapes == expected
    # The weights' Transposes are folded into the initializers, as torch.onnx's optimizer does.
    for node in model.graph:
        if node.op_type == "Transpose":
            assert node.inputs[0] is not None
            assert not node.inputs[0].is_initializer()
    result = run_reference(model, {"x": x.numpy()})
    assert result.engine == "onnxruntime", result.fallback_reason
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(next(iter(result.outputs.values())), want, rtol=1e-5, atol=1e-5)
