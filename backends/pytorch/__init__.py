"""PyTorch backend: ONNX IR -> ``torch.fx.GraphModule`` -> ``.pt2``.

``to_torch(model)`` builds a trainable ``nn.Module`` (initializers become parameters/buffers);
``save_pt2`` writes it with ``torch.export.save``; ``run_native`` runs ``.pt2``/TorchScript files.
Importing this package imports torch.
"""

from __future__ import annotations

from unframe.backends.pytorch.driver import to_torch
from unframe.backends.pytorch.pt2_file import export_program, run_native, save_pt2

__all__ = ["export_program", "run_native", "save_pt2", "to_torch"]
