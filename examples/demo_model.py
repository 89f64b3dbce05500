"""A small PyTorch CNN for `make demo`: conv, batch norm, residual add, pooling and a classifier.

Used as a factory: ``unframe convert py:examples/demo_model.py:make_model --input x=1,3,32,32 ...``.
"""

from __future__ import annotations

import torch
from torch import nn


class DemoNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.BatchNorm2d(16),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return torch.softmax(self.head(torch.flatten(self.pool(x), 1)), dim=1)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = DemoNet()
    # Non-trivial batch-norm statistics, so the conversion of SpatialBN is really exercised.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()
