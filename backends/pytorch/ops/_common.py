"""Shared imports and helpers for the op modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import onnx_ir as ir
import torch
from torch import fx

from unframe.backends.pytorch.context import BuildContext
from unframe.backends.pytorch.registry import ops

Outputs: TypeAlias = Sequence[fx.Node | None]

__all__ = ["BuildContext", "Outputs", "fx", "ir", "normalize_axis", "np", "ops", "torch"]


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
