"""The frontend on the MIL ops the backend's Resize emits where MIL's resize ops cannot sample as
ONNX does (``backends/coreml/ops/_resampling.py``), checked on a package coremltools' own PyTorch
converter writes: a resize spelled out in torch (coordinates from a scale computed at run time,
nearest rounding, tent weights, edge clamping, exclusion and extrapolation masks, one gather per
tap set), imported and compared with torch's outputs. Every MIL op type the backend emits for
onnx's Resize node tests must appear in that package, so none is read only on our own output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.coreml.coreml_packages import (
    assert_package_matches,
    node_test_ops_not_in,
    write_traced,
)

torch = pytest.importorskip("torch", reason="the package is converted from a PyTorch model")

SHAPE = (1, 3, 4, 5)


class Resampling(torch.nn.Module):
    """Nearest and linear resampling of the last axis (5 -> 7) at a scale computed from x."""

    def forward(self, x: Any) -> Any:
        scale = 1.5 + torch.sigmoid(x.mean()).reshape(1)
        coord = (torch.arange(7, dtype=torch.float32) + 0.5) / scale - 0.5
        nearest = torch.clamp(torch.ceil(coord - 0.5), 0, 4).to(torch.int32)
        near = torch.index_select(x, 3, nearest)
        taps = torch.floor(coord).unsqueeze(1) + torch.tensor([0.0, 1.0])
        weights = torch.clamp(1 - (taps - coord.unsqueeze(1)).abs(), 0.0, 1.0)
        inside = torch.logical_and(taps >= 0, taps <= 4)
        weights = torch.where(inside, weights, torch.zeros(1))
        total = weights.sum(1, keepdim=True)
        weights = weights / torch.where(total == 0, torch.ones(1), total)
        index = torch.clamp(taps, 0, 4).to(torch.int32).reshape(-1)
        gathered = torch.index_select(x, 3, index).reshape(1, 3, 4, 7, 2)
        linear = (gathered * weights.reshape(1, 1, 1, 7, 2)).sum(4)
        outside = torch.logical_or(coord < 0, coord > 4)
        linear = torch.where(outside.reshape(1, 1, 1, 7), torch.zeros(1), linear)
        ratios = torch.cat([scale, scale * 0.5])
        low = torch.minimum(ratios.amin(0, keepdim=True), ratios.amax(0, keepdim=True))
        return torch.cat([near, linear], 1) * low


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    module = Resampling().eval()
    example = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(0))
    return write_traced(
        module, example, tmp_path_factory.mktemp("resampling") / "resampling.mlpackage"
    )


def test_coremltools_resampling_package_matches_torch(package: tuple[Any, ...]) -> None:
    path, example, expected = package
    assert_package_matches(path, {"x": example}, expected)


@pytest.mark.parametrize(
    "name",
    [
        "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",
        "test_resize_downsample_sizes_linear_antialias",
        "test_resize_tf_crop_and_resize_extrapolation_value",
    ],
)
def test_every_mil_op_resize_emits_is_in_the_coremltools_package(
    name: str, package: tuple[Any, ...]
) -> None:
    assert node_test_ops_not_in(name, package[0]) == set()
