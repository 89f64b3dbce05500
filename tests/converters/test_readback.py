"""Every file unframe writes, unframe reads back: A (``.onnx``) -> writer's format -> ``.onnx``.

The writers are every registered framework that writes (``framework_names()``), so a new writer is
covered as soon as it is registered. The models are every model of the suite's model sets:

- the torch zoo (``tests/models/torch_zoo.py``) plus a small ViT (patch-embedding Conv, class
  token, position embedding, encoder layers, LayerNorm, head) and a spatial transformer
  (``affine_grid`` + ``grid_sample``), exported once per module by the PyTorch frontend
  (``torch.onnx``, dynamo) with their dynamic axes, and run at batch sizes other than the
  export's (see ``_batches``);
- the ``light_*.onnx`` models shipped inside onnx (fixed batch 1), fed as onnx's backend test
  runner feeds them.

Each source is written by every writer with ``unframe.convert``, read back to ONNX with
``unframe.convert``, and the result run by onnxruntime; onnxruntime on the source is the oracle.
A writer that legitimately cannot express a model must refuse it as listed in
``EXPECTED_REFUSALS``; a listed refusal that no longer happens fails, so the table stays true.
A bug in a writer or reader is a strict xfail (``KNOWN_BUGS``): visible, and failing once fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
from models import torch_zoo as zoo  # noqa: E402
from models.test_onnx_light_models import LIGHT_DIR  # noqa: E402
from models.test_onnx_light_models import MODELS as LIGHT_MODELS  # noqa: E402
from onnx.backend.test.runner import Runner  # noqa: E402
from torch import nn  # noqa: E402

import unframe  # noqa: E402
from unframe.converters.registry import framework_names, get_framework  # noqa: E402
from unframe.frontends.pytorch import from_torch  # noqa: E402
from unframe.shared_ir.errors import UnsupportedOpsError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
#: writer -> the suffix it writes; frameworks without a backend write nothing and are left out.
WRITERS: dict[str, str] = {
    name: get_framework(name).writes[0] for name in framework_names() if get_framework(name).writes
}
#: (model, writer) -> the op types the writer refuses (exit 3, nothing written), with why.
EXPECTED_REFUSALS: dict[tuple[str, str], tuple[str, ...]] = {
    # Caffe2 has no grid sampling operator (its SpatialTransformer op is a contrib op never built
    # into its operator library), so a model sampling a grid cannot be a NetDef.
    ("stn", "caffe2"): ("GridSample",),
    # Caffe2's Slice and ResizeNearest/UpsampleBilinear take static sizes; with a dynamic batch
    # the recurrent nets' state slice and the U-Net's upsampling have none.
    ("gru", "caffe2"): ("Slice",),
    ("lstm", "caffe2"): ("Slice",),
    ("unet", "caffe2"): ("Resize",),
}
# tflite lowers the TensorFlow backend's function with TFLiteConverter: it refuses what that backend
# refuses, and then what TFLite's builtins cannot hold (listed node by node by TFLiteConverter).
EXPECTED_REFUSALS |= {
    (model, "tflite"): ops
    for (model, writer), ops in EXPECTED_REFUSALS.items()
    if writer == "tensorflow"
}
#: (model, writer) -> a bug in our own writer or reader, kept visible as a strict xfail.
KNOWN_BUGS: dict[tuple[str, str], str] = {
    ("light_squeezenet", "coreml"): (
        "the Core ML frontend reads GlobalAveragePool's reduce_mean back as ReduceMean, which "
        "onnxruntime rounds an ulp apart across equal channels; the Softmax over ~1e10 logits "
        "turns that into 1/750 and 0 (the PyTorch import reads such means as GlobalAveragePool)"
    ),
}

#: (model, writer) -> an ill-conditioned output where reader and oracle agree to float32 rounding
#: before the amplifying op; a strict xfail too, with the figures measured.
ILL_CONDITIONED: dict[tuple[str, str], str] = {
    ("light_squeezenet", "tensorflow"): (
        "TensorFlow's own outputs equal onnxruntime's exactly; tf2onnx reads the reduce_mean back "
        "as ReduceMean, whose pre-softmax logits (~9.5e9, all equal) onnxruntime rounds 1 ulp "
        "apart across channels (max rel 1.08e-7 <= float32 eps 1.19e-7); the Softmax then gives "
        "1/750 and 0 instead of 1/1000"
    ),
    ("light_squeezenet", "tflite"): (
        "the tflite file reads back with the mean as ReduceMean too: pre-softmax logits 1 ulp "
        "apart across channels in onnxruntime (max rel 1.08e-7), Softmax 1/750 and 0 for 1/1000"
    ),
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


#: The torch models: the zoo's, plus the ViT and the spatial transformer (dynamic batch).
TORCH_MODELS: dict[str, zoo.ZooEntry] = {
    **zoo.ZOO,
    "vit": zoo.ZooEntry("vit", TinyViT, lambda n: (n, 3, 16, 16)),
    "stn": zoo.ZooEntry("stn", TinySpatialTransformer, lambda n: (n, 1, 8, 8)),
}
MODELS = sorted(TORCH_MODELS) + [f"light_{name}" for name in LIGHT_MODELS]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The ``.onnx`` source of a model, exported (torch) or copied (light) once per module."""
    folder = tmp_path_factory.mktemp("sources")
    paths: dict[str, Path] = {}

    def path_of(name: str) -> Path:
        if name not in paths:
            if name in TORCH_MODELS:
                entry = TORCH_MODELS[name]
                model = from_torch(entry.model(), entry.inputs(2), dynamic_shapes=entry.dynamic)
                paths[name] = folder / f"{name}.onnx"
                ir.save(model, paths[name])
            else:
                paths[name] = LIGHT_DIR / f"{name}.onnx"
        return paths[name]

    return path_of


def _feeds(name: str, source: Path, batch: int) -> list[np.ndarray]:
    """Inputs in graph-input order: random at ``batch`` for torch models, onnx's own for light."""
    if name in TORCH_MODELS:
        x = np.random.default_rng(batch).standard_normal(TORCH_MODELS[name].input_shape(batch))
        if name == "cond":  # a positive and a negative sum: each branch of the If runs once
            x = np.abs(x) + 0.1 if batch % 2 else -np.abs(x) - 0.1
        return [x.astype(np.float32)]
    proto = onnx.load(source)
    initializers = {tensor.name for tensor in proto.graph.initializer}
    return [
        Runner.generate_dummy_data(value, seed=0, name=name.removeprefix("light_"), random=False)
        for value in proto.graph.input
        if value.name not in initializers
    ]


def _batches(name: str) -> tuple[int, ...]:
    """The batch sizes a model runs at: neither the export's (2) where the batch is dynamic.

    Two for the first four models of this test and for ``cond`` (one per branch), one for the
    others, to keep the file within its time budget; the light models have a fixed batch of 1.
    """
    if name not in TORCH_MODELS:
        return (1,)
    return (3, 1) if name in {"resnet", "transformer", "vit", "stn", "cond"} else (3,)


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


def test_every_writer_is_covered() -> None:
    """The frameworks of the design card that write are all here (a registry slip shows)."""
    assert {"onnx", "pytorch", "caffe2", "tensorflow", "coreml", "tflite"} <= set(WRITERS)


def test_expected_refusals_name_real_cases() -> None:
    assert {model for model, _ in EXPECTED_REFUSALS} <= set(MODELS)
    assert {writer for _, writer in EXPECTED_REFUSALS} <= set(WRITERS)
    assert set(KNOWN_BUGS) <= {(model, writer) for model in MODELS for writer in WRITERS}
    assert set(ILL_CONDITIONED) <= {(model, writer) for model in MODELS for writer in WRITERS}
    assert not set(KNOWN_BUGS) & set(EXPECTED_REFUSALS)
    assert not set(ILL_CONDITIONED) & (set(EXPECTED_REFUSALS) | set(KNOWN_BUGS))


#: The opset-9 light models go through the tflite writer's TensorFlow path already (the
#: tensorflow writer); TFLiteConverter over them adds minutes to the suite, and over VGG19's
#: 548 MB of weights it grew the test process to 23 GB and was OOM-killed (CI, 2026-12-06).
#: `make conformance` and the matrix cover the tflite writer; a benchmark should measure this.
_TFLITE_LIGHT_LEFT_OUT = (
    "TFLiteConverter over the opset-9 light models: minutes, and 23 GB on VGG19"
)
#: The largest light models through the TensorFlow writer (50, 30, 21 and 16 s of a 15-minute
#: suite); their other writers and the TensorFlow writer's other light models stay.
_TENSORFLOW_LEFT_OUT = {"light_vgg19", "light_zfnet512", "light_densenet121", "light_bvlc_alexnet"}


def _cases() -> list[object]:
    xfails = KNOWN_BUGS | ILL_CONDITIONED
    return [
        pytest.param(name, writer, marks=pytest.mark.xfail(strict=True, reason=xfails[key]))
        if (key := (name, writer)) in xfails
        else pytest.param(name, writer, marks=pytest.mark.skip(reason=_TFLITE_LIGHT_LEFT_OUT))
        if writer == "tflite" and name.startswith("light_")
        else pytest.param(
            name,
            writer,
            marks=pytest.mark.skip(
                reason="suite time: "
                + ", ".join(sorted(_TENSORFLOW_LEFT_OUT))
                + " are read back through the other writers"
            ),
        )
        if writer == "tensorflow" and name in _TENSORFLOW_LEFT_OUT
        else pytest.param(name, writer)
        for name in MODELS
        for writer in WRITERS
    ]


@pytest.mark.parametrize(("name", "writer"), _cases())
def test_what_a_writer_writes_reads_back(
    name: str, writer: str, tmp_path: Path, source: Callable[[str], Path]
) -> None:
    framework = get_framework(writer)
    if not framework.is_installed():
        pytest.skip(f"{writer} is not installed ({', '.join(framework.missing_modules())})")
    original = source(name)
    written = tmp_path / f"{name}{WRITERS[writer]}"
    refused = EXPECTED_REFUSALS.get((name, writer))
    if refused is not None:
        with pytest.raises(UnsupportedOpsError) as error:
            unframe.convert(original, written, target=writer)
        assert error.value.exit_code == 3
        assert sorted({op.op_type for op in error.value.ops}) == sorted(refused)
        assert not written.exists()  # nothing partial
        return

    unframe.convert(original, written, target=writer)
    back = tmp_path / f"{name}.back.onnx"
    unframe.convert(written, back, source=writer)
    onnx.checker.check_model(onnx.load(back), full_check=True)
    for batch in _batches(name):
        arrays = _feeds(name, original, batch)
        _assert_same_outputs(_onnxruntime(back, arrays), _onnxruntime(original, arrays))
