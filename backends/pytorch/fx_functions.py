"""Small functions the generated graphs call at run time.

They are module-level, plain Python over tensors, so ``torch.fx`` code references them by name
and ``torch.export`` traces through them into ATen ops.
"""

from __future__ import annotations

from typing import Any

import torch


def to_int_list(tensor: torch.Tensor) -> list[int]:
    """A 1-D (or 0-D) integer tensor as a list of ints (a computed shape, axes, pads...)."""
    return [int(v) for v in tensor.reshape(-1).tolist()]


def shape_tensor(sizes: list[int | torch.SymInt]) -> torch.Tensor:
    """A list of (possibly symbolic) sizes as a 1-D int64 tensor, as ONNX ``Shape`` yields."""
    if not sizes:
        return torch.zeros((0,), dtype=torch.int64)
    # torch.full keeps a symbolic size symbolic (torch.as_tensor would specialize it).
    return torch.stack([torch.full((), s, dtype=torch.int64) for s in sizes])  # type: ignore[arg-type]


def cast_to(value: Any, dtype: torch.dtype) -> Any:
    """A graph output in its declared dtype (sequences element-wise, None for empty optionals)."""
    if isinstance(value, list):
        return [cast_to(v, dtype) for v in value]
    if not isinstance(value, torch.Tensor) or value.dtype == dtype:
        return value
    return value.to(dtype)
