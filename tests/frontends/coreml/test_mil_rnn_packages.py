"""The frontend on the packages coremltools' own PyTorch converter writes for torch's GRU (a
while_loop over the steps, gathering each step and scattering its state into the output) and
RNN (MIL's rnn, tanh and relu), imported and compared with torch's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.coreml_packages import assert_package_matches, write_traced
from unframe.backends.coreml.native import load_mil_program

torch = pytest.importorskip("torch", reason="the package is converted from a PyTorch model")

SHAPE = (6, 2, 4)


class Recurrent(torch.nn.Module):
    """A GRU, a relu RNN and a tanh RNN, their sequences and final states all used."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(4, 5)
        self.relu_rnn = torch.nn.RNN(5, 3, nonlinearity="relu")
        self.tanh_rnn = torch.nn.RNN(3, 2)

    def forward(self, x: Any) -> Any:
        y, h = self.gru(x)
        z, hz = self.relu_rnn(y)
        w, hw = self.tanh_rnn(z)
        return w.sum(-1, keepdim=True) + h.sum() + hz.mean() + hw.sum()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    module = Recurrent().eval()
    example = torch.randn(*SHAPE)
    return write_traced(module, example, tmp_path_factory.mktemp("rnn") / "rnn.mlpackage")


def test_coremltools_gru_and_rnn_package_matches_torch(package: tuple[Any, ...]) -> None:
    path, example, expected = package
    op_types = [op.op_type for op in load_mil_program(path).functions["main"].operations]
    assert op_types.count("rnn") == 2 and "while_loop" in op_types
    assert_package_matches(path, {"x": example}, expected)
