"""What both directions of the PyTorch adapter share below torch itself.

torch is PyTorch's native layer; unframe adds what the frontend and the backend both need: the
export state torch keeps between exports (cleared before each one), the ``unframe.json`` record a
``.pt2`` written by unframe carries (the ONNX names of its inputs, outputs and weights), and a
faster ``torch.export.load`` (``pt2_read``: weights mapped, schema types looked up once).
The frontend imports only this package of the backend.
"""

from __future__ import annotations

from unframe.backends.pytorch.native.dispatch import fresh_export_state
from unframe.backends.pytorch.native.pt2_names import (
    UNFRAME_JSON,
    checked_source_names,
    source_names,
)
from unframe.backends.pytorch.native.pt2_read import pt2_load_faster
from unframe.backends.pytorch.native.quiet import quiet_torch

__all__ = [
    "UNFRAME_JSON",
    "checked_source_names",
    "fresh_export_state",
    "pt2_load_faster",
    "quiet_torch",
    "source_names",
]
