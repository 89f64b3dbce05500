"""Every file unframe writes, unframe reads back: A (``.onnx``) -> writer's format -> ``.onnx``.

The sources are small PyTorch models exported by ``torch.onnx.export(..., dynamo=True)`` with a
dynamic batch, as the PyTorch frontend exports them: a CNN (the zoo's ResNet), a transformer
block (the zoo's encoder), a ViT (patch-embedding Conv, class token, position embedding, encoder
layers, LayerNorm, head) and a spatial transformer (``affine_grid`` + ``grid_sample``). Each is
written by every writer with ``unframe.convert``, read back to ONNX with ``unframe.convert``, and
the result run by onnxruntime at another batch size than the export's; onnxruntime on the source
is the oracle. A writer that legitimately cannot express a model must refuse it as listed in
``EXPECTED_REFUSALS``; a listed refusal that no longer happens fails, so the table stays true.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
from models import torch_zoo as zoo  # noqa: E402
from torch import nn  # noqa: E402

import unframe  # noqa: E402
from unframe.shared_ir.errors import UnsupportedOpsError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
WRITERS = {"onnx": ".onnx", "pytorch": ".pt2", "caffe2": ".caffe2"}
#: (model, writer) -> the op types the writer refuses, with why.
EXPECTED_REFUSALS: dict[tuple[str, str], tuple[str, ...]] = {
    # Caffe2 has no grid sampling operator (its SpatialTransformer op is a contrib op never built
    # into its operator library), so a model sampling a grid cannot be a NetDef.
    ("stn", "caffe2"): ("GridSample",),
}


class TinyViT(nn.Module):
    """A ViT at toy size: 16x16 images, 4x4 patches, width 32, two pre-norm encoder layers."""

    def __init__(self, image: int = 16, patch: int = 4, width: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, width, patch, patch)
        tokens = (image // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.1)
        self.position = nn.Parameter(torch.randn(1, tokens, width) * 0.1)
        layer = nn.TransformerEncoderLayer(
            width, 4, width * 2, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.position
        return self.head(self.norm(self.encoder(x)[:, 0]))


class TinySpatialTransformer(nn.Module):
    """A localization net predicts an affine warp; the image is resampled, then classified."""

    def __init__(self) -> None:
        super().__init__()
        self.locate = nn.Sequential(
            nn.Conv2d(1, 4, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 6),
        )
        self.classify = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.locate(x).view(-1, 2, 3)
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        return self.classify(nn.functional.grid_sample(x, grid, align_corners=False))


#: name -> (module factory, input shape at a given batch)
MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[int], tuple[int, ...]]]] = {
    "cnn": (zoo.TinyResNet, lambda n: (n, 3, 32, 32)),
    "transformer": (zoo.TinyTransformer, lambda n: (n, 6, 32)),
    "vit": (TinyViT, lambda n: (n, 3, 16, 16)),
    "stn": (TinySpatialTransformer, lambda n: (n, 1, 8, 8)),
}
_SOURCES: dict[str, Path] = {}


def _source(name: str, factory: pytest.TempPathFactory) -> Path:
    """The model exported by torch.onnx (dynamo) with a dynamic batch, once per session."""
    if name not in _SOURCES:
        build, shape = MODELS[name]
        torch.manual_seed(0)
        module = build().eval()
        example = (torch.randn(*shape(2)),)
        batch = torch.export.Dim("batch", min=1, max=64)
        program = torch.onnx.export(
            module, example, dynamo=True, dynamic_shapes=({0: batch},), verbose=False
        )
        assert program is not None
        path = factory.mktemp("sources") / f"{name}.onnx"
        program.save(str(path))
        _SOURCES[name] = path
    return _SOURCES[name]


def _feeds(path: Path, batch: int) -> list[np.ndarray]:
    shape = MODELS[path.stem][1](batch)
    return [np.random.default_rng(batch).standard_normal(shape).astype(np.float32)]


def _onnxruntime(path: Path, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Runs ``path``, feeding ``arrays`` to its graph inputs in order (readers may rename them)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]
    assert len(names) == len(arrays), names
    return [np.asarray(a) for a in session.run(None, dict(zip(names, arrays, strict=True)))]


def _assert_same_outputs(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for actual, expected in zip(got, want, strict=True):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
        # Against the output's own scale too, so a small-valued output cannot hide a change.
        scale = float(np.std(expected)) or 1.0
        assert float(np.max(np.abs(actual - expected))) / scale < 1e-3


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_what_a_writer_writes_reads_back(
    name: str, writer: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = _source(name, tmp_path_factory)
    written = tmp_path / f"{name}{WRITERS[writer]}"
    refused = EXPECTED_REFUSALS.get((name, writer))
    if refused is not None:
        with pytest.raises(UnsupportedOpsError) as error:
            unframe.convert(source, written, target=writer)
        assert error.value.exit_code == 3
        assert sorted({op.op_type for op in error.value.ops}) == sorted(refused)
        assert not written.exists()  # nothing partial
        return

    unframe.convert(source, written, target=writer)
    back = tmp_path / f"{name}.back.onnx"
    unframe.convert(written, back, source=writer)
    onnx.checker.check_model(onnx.load(back), full_check=True)
    for batch in (3, 1):
        arrays = _feeds(source, batch)
        _assert_same_outputs(_onnxruntime(back, arrays), _onnxruntime(source, arrays))
