"""The PyTorch backend's one op registry (ONNX op -> fx graph converter)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import onnx_ir as ir

from unframe.shared_ir.op_registry import OpRegistry

if TYPE_CHECKING:
    from torch import fx

    from unframe.backends.pytorch.context import BuildContext

#: ``def relu_v14(node, ctx) -> [fx node per ONNX output, None for an absent optional output]``
Converter: TypeAlias = "Callable[[ir.Node, BuildContext], Sequence[fx.Node | None]]"

ops: OpRegistry[Converter] = OpRegistry("pytorch", "export")

__all__ = ["Converter", "Sequence", "ops"]
