"""Small random-weight PyTorch models, real in structure, for the conversion suite.

Each entry builds an eval-mode module with seeded weights (BatchNorm running statistics included,
so that eval mode is not an identity), example inputs at a given batch size, and the axes that
stay dynamic. Sizes are tiny so the whole suite runs in seconds per model on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def _randomize_batchnorm(module: nn.Module, generator: torch.Generator) -> None:
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d | nn.BatchNorm1d):
            n = child.num_features
            with torch.no_grad():
                child.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                child.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                child.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                child.bias.copy_(torch.randn(n, generator=generator) * 0.1)


# -- ResNet-style ------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.layer1 = BasicBlock(8, 8, 1)
        self.layer2 = BasicBlock(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# -- MobileNet-style ---------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = torch.sigmoid(self.expand(F.silu(self.reduce(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
            SqueezeExcite(hidden, max(1, cin // 4)),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class TinyMobileNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()
        )
        self.blocks = nn.Sequential(
            InvertedResidual(8, 8, 2, 1),
            InvertedResidual(8, 16, 3, 2),
            InvertedResidual(16, 16, 2, 1),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


# -- U-Net-style -------------------------------------------------------------------------------


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(),
    )


class TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down1 = _double_conv(3, 8)
        self.down2 = _double_conv(8, 16)
        self.bottom = _double_conv(16, 16)
        self.up2 = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.dec2 = _double_conv(32, 8)
        self.dec1 = _double_conv(16, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        b = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = F.interpolate(u2, scale_factor=2.0, mode="bilinear", align_corners=False)
        u1 = self.dec1(torch.cat([u1, d1], dim=1))
        return self.out(F.interpolate(u1, size=(x.shape[2], x.shape[3]), mode="nearest"))


# -- recurrent and attention -------------------------------------------------------------------


class LSTMTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


class GRUEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(8, 12, batch_first=True, bidirectional=True)
        self.head = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, hidden = self.gru(x)
        summary = torch.cat([hidden[0], hidden[1]], dim=-1)
        return self.head(out) + self.head(summary).unsqueeze(1)


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class CondModel(nn.Module):
    """``torch.cond`` on a data-dependent predicate: both branches must survive as an ``If``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def positive(x: torch.Tensor) -> torch.Tensor:
            return torch.sin(self.linear(x)) * 2.0

        def negative(x: torch.Tensor) -> torch.Tensor:
            return torch.cos(x) - self.linear(x)

        return torch.cond(x.sum() > 0, positive, negative, (x,))


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    """One model of the suite: how to build it, its inputs, and which axes are dynamic."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: Callable[[int], tuple[int, ...]]
    dynamic: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"x": (0,)})

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        module = self.build()
        _randomize_batchnorm(module, torch.Generator().manual_seed(1))
        return module.eval()

    def inputs(self, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return (torch.randn(*self.input_shape(batch), generator=generator),)


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("resnet", TinyResNet, lambda n: (n, 3, 32, 32)),
        ZooEntry("mobilenet", TinyMobileNet, lambda n: (n, 3, 32, 32)),
        ZooEntry("unet", TinyUNet, lambda n: (n, 3, 32, 32)),
        ZooEntry("lstm", LSTMTagger, lambda n: (n, 7, 8), {"x": (0, 1)}),
        ZooEntry("gru", GRUEncoder, lambda n: (n, 7, 8), {"x": (0, 1)}),
        ZooEntry("transformer", TinyTransformer, lambda n: (n, 6, 32), {"x": (0, 1)}),
        ZooEntry("cond", CondModel, lambda n: (n, 6)),
    )
}


# -- factories for ``unframe convert tests/models/torch_zoo.py:NAME`` --------------------------


def resnet() -> nn.Module:
    return ZOO["resnet"].model()


def mobilenet() -> nn.Module:
    return ZOO["mobilenet"].model()


def unet() -> nn.Module:
    return ZOO["unet"].model()


def lstm() -> nn.Module:
    return ZOO["lstm"].model()


def gru() -> nn.Module:
    return ZOO["gru"].model()


def transformer() -> nn.Module:
    return ZOO["transformer"].model()


def cond() -> nn.Module:
    return ZOO["cond"].model()
