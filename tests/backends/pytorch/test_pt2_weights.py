"""``.pt2`` weights written from their storage read back bit for bit through ``torch.export.load``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unframe.backends.pytorch.native.pt2_weights import weights_written_from_storage  # noqa: E402


class Mixed(torch.nn.Module):
    """float32, bfloat16 and float16 weights, one a view into a larger shared storage."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.dense = torch.nn.Parameter(torch.randn(64, 48, generator=generator))
        self.small = torch.nn.Parameter(torch.randn(48, dtype=torch.float16, generator=generator))
        self.brain16 = torch.nn.Parameter(
            torch.randn(48, dtype=torch.bfloat16, generator=generator)
        )
        table = torch.randn(4, 48, generator=generator)
        self.register_buffer("table", table)
        self.register_buffer("row", table[2])  # shares the table's storage at an offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.dense + self.small.float() + self.brain16.float()
        return y * self.row + self.table.sum(0)


def test_saved_weights_read_back_bit_for_bit(tmp_path: Path) -> None:
    from torch.export.pt2_archive import _package

    module = Mixed().eval()
    x = torch.randn(3, 64)
    program = torch.export.export(module, (x,), strict=False)
    original = _package._get_raw_tensor_bytes  # noqa: SLF001
    with weights_written_from_storage():
        assert _package._get_raw_tensor_bytes is not original  # noqa: SLF001
        torch.export.save(program, str(tmp_path / "mixed.pt2"))
    assert _package._get_raw_tensor_bytes is original  # noqa: SLF001

    loaded = torch.export.load(str(tmp_path / "mixed.pt2"))
    for name, tensor in module.state_dict().items():
        read = loaded.state_dict.get(name, loaded.constants.get(name))
        assert read is not None, name
        assert read.dtype == tensor.dtype
        width = {torch.float32: torch.int32}.get(tensor.dtype, torch.int16)
        np.testing.assert_array_equal(read.view(width).numpy(), tensor.view(width).numpy())
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.module()(x).numpy(), module(x).numpy())
