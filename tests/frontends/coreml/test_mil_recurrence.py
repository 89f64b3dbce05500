"""The frontend on the MIL ops the backend emits for RNN/GRU/LSTM unrolled
(``backends/coreml/ops/_recurrence.py``), checked on a package coremltools' own PyTorch converter
writes: a GRU with weights and sequence lengths given at run time, spelled out step by step in
torch, imported and compared with torch's outputs. Every MIL op type the backend emits for
onnx's recurrent node tests must appear in that package, so none is read only on our own output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.coreml_packages import (
    assert_package_matches,
    node_test_ops_not_in,
    write_mlprogram,
)
from unframe.backends.coreml.native import coremltools, quiet_stderr

torch = pytest.importorskip("torch", reason="the package is converted from a PyTorch model")

STEPS, BATCH, FEATURES, HIDDEN = 3, 2, 4, 5


class Recurrence(torch.nn.Module):
    """A GRU step by step: direction 1 of stacked weights, masked by each sequence's length."""

    def forward(self, x: Any, w: Any, r: Any, lens: Any) -> Any:
        w1 = torch.narrow(w, 0, 1, 1).squeeze(0)
        r1 = torch.narrow(r, 0, 1, 1).squeeze(0)
        projected = torch.matmul(x, w1.transpose(0, 1))
        h = torch.zeros(BATCH, HIDDEN)
        ys = []
        for t, step in enumerate(torch.split(projected, 1, 0)):
            hidden = torch.matmul(h, r1.transpose(0, 1))
            xz, xr, xh = torch.chunk(step.squeeze(0), 3, -1)
            hz, hr, hh = torch.chunk(hidden, 3, -1)
            z = torch.sigmoid(xz + hz)
            candidate = torch.tanh(xh + torch.sigmoid(xr + hr) * hh)
            new = (1 - z) * candidate + z * h
            valid = (lens > t).unsqueeze(1)
            ys.append(torch.where(valid, new, torch.zeros(1, 1)))
            h = torch.where(valid, new, h)
        return torch.stack(ys, 0).permute(1, 0, 2) + h.unsqueeze(1)


NAMES = ("x", "w", "r", "lens")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], np.ndarray]:
    ct = coremltools()
    generator = torch.Generator().manual_seed(0)
    examples = (
        torch.randn(STEPS, BATCH, FEATURES, generator=generator),
        torch.randn(2, 3 * HIDDEN, FEATURES, generator=generator),
        torch.randn(2, 3 * HIDDEN, HIDDEN, generator=generator),
        torch.tensor([3, 2], dtype=torch.int32),
    )
    module = Recurrence().eval()
    with torch.no_grad():
        expected = module(*examples).numpy()
    with quiet_stderr():  # tracing's warnings, as ct.convert's
        traced = torch.jit.trace(module, examples)
    path = write_mlprogram(
        traced,
        tmp_path_factory.mktemp("recurrence") / "recurrence.mlpackage",
        [
            ct.TensorType(name=name, shape=tuple(example.shape), dtype=np.int32)
            if name == "lens"
            else ct.TensorType(name=name, shape=tuple(example.shape))
            for name, example in zip(NAMES, examples, strict=True)
        ],
    )
    feeds = {name: example.numpy() for name, example in zip(NAMES, examples, strict=True)}
    return path, feeds, expected


def test_coremltools_recurrence_package_matches_torch(package: tuple[Any, ...]) -> None:
    path, feeds, expected = package
    assert_package_matches(path, feeds, expected)


@pytest.mark.parametrize(
    "name",
    [
        "test_lstm_with_peepholes",
        "test_gru_seq_length",
        "test_simple_rnn_batchwise",
    ],
)
def test_every_mil_op_a_recurrence_emits_is_in_the_coremltools_package(
    name: str, package: tuple[Any, ...]
) -> None:
    assert node_test_ops_not_in(name, package[0]) == set()
