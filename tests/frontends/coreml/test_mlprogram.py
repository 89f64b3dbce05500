"""ML Program packages written by coremltools' own PyTorch converter import and match torch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

from tests.frontends.coreml.coreml_packages import write_mlprogram, write_traced
from unframe.backends.coreml.native import coremltools, load_mil_program
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError

torch = pytest.importorskip("torch", reason="the packages are converted from PyTorch models")


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, groups=2)
        self.fc = torch.nn.Linear(16, 5)
        with torch.no_grad():
            self.norm.running_mean.uniform_(-1, 1)
            self.norm.running_var.uniform_(0.5, 2)

    def forward(self, x: Any) -> Any:
        y = self.norm(torch.relu(self.conv1(x)))  # after the ReLU: not fused into the conv
        y = torch.nn.functional.max_pool2d(y, 2)
        y = torch.sigmoid(self.conv2(y)) * torch.nn.functional.hardtanh(y[:, :, :3, :3])
        y = torch.nn.functional.avg_pool2d(y, 1)
        pooled = torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], dim=1)
        return torch.softmax(self.fc(torch.flatten(pooled, 1)), -1)


class Block(torch.nn.Module):
    """A pre-norm transformer block written out (what tiny BERT/GPT-2 blocks are made of)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = torch.nn.Linear(16, 48)
        self.out = torch.nn.Linear(16, 16)
        self.norm1, self.norm2 = torch.nn.LayerNorm(16), torch.nn.LayerNorm(16)
        self.up, self.down = torch.nn.Linear(16, 32), torch.nn.Linear(32, 16)

    def forward(self, x: Any) -> Any:
        q, k, v = self.qkv(self.norm1(x)).split(16, -1)
        q, k, v = (t.reshape(1, 6, 2, 8).transpose(1, 2) for t in (q, k, v))
        attention = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v
        x = x + self.out(attention.transpose(1, 2).reshape(1, 6, 16))
        hidden = self.up(self.norm2(x))
        x = x + self.down(torch.nn.functional.gelu(hidden) + torch.tanh(hidden[:, 1:2]) / 3)
        return torch.cat([x[:, :1], torch.erf(x[:, 1:])], dim=1)


MODELS = {"cnn": (SmallCNN, (1, 3, 16, 16)), "block": (Block, (1, 6, 16))}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any, Any]]:
    """Each model converted once by ``ct.convert`` (float32), with torch's outputs (the oracle)."""
    torch.manual_seed(0)
    made = {}
    for name, (factory, shape) in MODELS.items():
        module = factory().eval()
        example = torch.randn(*shape)
        path = tmp_path_factory.mktemp(name) / f"{name}.mlpackage"
        made[name] = write_traced(module, example, path)
    return made


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString())
    return session.run(None, feeds)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_package_from_coremltools_matches_torch(name: str, packages: dict[str, Any]) -> None:
    path, example, expected = packages[name]
    model = load_coreml(path)
    (actual,) = _run(model, {"x": example})
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_mil_op_and_var_names_are_kept(packages: dict[str, Any]) -> None:
    path = packages["block"][0]
    program = load_mil_program(path)
    operations = [op for op in program.functions["main"].operations if op.op_type != "const"]
    graph = load_coreml(path).graph
    assert {op.name for op in operations} <= {node.name for node in graph}
    values = {value.name for node in graph for value in node.outputs}
    assert {var.name for op in operations for var in op.outputs} <= values


def test_unsupported_mil_ops_are_listed_at_once(tmp_path: Path) -> None:
    coremltools()
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 4))])
    def program(x: Any) -> Any:
        banded = mb.band_part(x=x, lower=1, upper=1, name="banded")
        order = mb.argsort(x=mb.relu(x=banded), axis=-1, name="order")
        return mb.cast(x=order, dtype="fp32")

    path = write_mlprogram(program, tmp_path / "unsupported.mlpackage")
    with pytest.raises(UnsupportedOpsError) as caught:
        load_coreml(path)
    listed = {(op.node, op.op_type) for op in caught.value.ops}
    assert listed == {("banded", "band_part"), ("order", "argsort")}
    assert caught.value.exit_code == 3


def test_missing_weight_file_is_bad_input(packages: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "copy.mlpackage"
    shutil.copytree(packages["cnn"][0], copy)
    for weights in copy.rglob("weight.bin"):
        weights.unlink()
    with pytest.raises(BadInputError, match="weight.bin"):
        load_coreml(copy)


def test_directory_that_is_not_an_mlpackage_is_bad_input(tmp_path: Path) -> None:
    folder = tmp_path / "model.mlpackage"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model")
    with pytest.raises(BadInputError, match="not an mlpackage") as caught:
        load_coreml(folder)
    assert caught.value.exit_code == 2


def test_compiled_bundle_is_bad_input(tmp_path: Path) -> None:
    bundle = tmp_path / "model.mlmodelc"
    bundle.mkdir()
    (bundle / "coremldata.bin").write_bytes(b"\0" * 16)
    with pytest.raises(BadInputError, match="compiled"):
        load_coreml(bundle)
