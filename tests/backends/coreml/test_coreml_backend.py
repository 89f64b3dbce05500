"""ONNX -> Core ML ML Program packages: torch-exported models written as .mlpackage, read back by
coremltools (spec and milproto program), re-imported through the frontend and run on onnxruntime
against onnxruntime on the source (Core ML itself runs only on macOS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from unframe.backends.coreml.driver import FLEXIBLE_DIM_LIMIT
from unframe.backends.coreml.native import (
    SOURCE_NAMES_KEY,
    decode_source_names,
    load_mil_program,
    load_spec,
)
from unframe.cli.main import cli
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.options import ConvertOptions
from unframe.shared_ir.runner import run_onnxruntime

torch = pytest.importorskip("torch", reason="the models are exported from torch")
pytest.importorskip("coremltools", reason="the coreml extra is not installed")


class TinyBlock(torch.nn.Module):
    """Self-attention and a GELU feed-forward, each with a residual and a LayerNorm (post-norm)."""

    def __init__(self, width: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.norm1 = torch.nn.LayerNorm(width)
        self.ff = torch.nn.Sequential(
            torch.nn.Linear(width, 2 * width), torch.nn.GELU(), torch.nn.Linear(2 * width, width)
        )
        self.norm2 = torch.nn.LayerNorm(width)

    def forward(self, x: Any) -> Any:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / (width // self.heads) ** 0.5, dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        x = self.norm1(x + self.proj(attended))
        return self.norm2(x + self.ff(x))


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, groups=2)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.bn(self.conv1(x)))
        y = torch.nn.functional.max_pool2d(y, 2)
        y = torch.nn.functional.avg_pool2d(torch.sigmoid(self.conv2(y)), 1)
        y = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.up(y), 1), 1)
        return torch.log_softmax(self.fc(y), dim=-1)


def _export(module: Any, example: Any, path: Path, input_name: str) -> Path:
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.3)
    module.eval()
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=[input_name],
        output_names=["out:0"],
        dynamic_axes={input_name: {0: "batch"}},
        do_constant_folding=False,
    )
    return path


@pytest.fixture(scope="module")
def framework() -> CoreMLFramework:
    return CoreMLFramework()


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory, framework: CoreMLFramework) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cnn")
    source = _export(SmallCNN(), torch.randn(2, 3, 16, 16), folder / "cnn.onnx", "input.1")
    package = folder / "cnn.mlpackage"
    framework.save(ir.load(source), package, ConvertOptions())
    return source, package


@pytest.fixture(scope="module")
def transformer(
    tmp_path_factory: pytest.TempPathFactory, framework: CoreMLFramework
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("transformer")
    source = _export(TinyBlock(), torch.randn(2, 5, 16), folder / "block.onnx", "tokens")
    package = folder / "block.mlpackage"
    framework.save(ir.load(source), package, ConvertOptions())
    return source, package


def _reimported_outputs(
    framework: CoreMLFramework, package: Path, feeds: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    from unframe.shared_ir.runner import run_reference

    model = framework.load(package, ConvertOptions())
    assert [value.name for value in model.graph.inputs] == list(feeds)
    return run_reference(model, feeds).outputs


def test_cnn_package_loads_in_coremltools_with_named_mil_ops(cnn: tuple[Path, Path]) -> None:
    source, package = cnn
    spec = load_spec(package)
    assert spec.WhichOneof("Type") == "mlProgram"
    # Names Core ML forbids are sanitized; the package's metadata maps them back.
    record = decode_source_names(spec.description.metadata.userDefined[SOURCE_NAMES_KEY])
    assert [record.get(i.name, i.name) for i in spec.description.input] == ["input.1"]
    assert [record.get(o.name, o.name) for o in spec.description.output] == ["out:0"]
    program = load_mil_program(package)
    operations = list(program.functions["main"].operations)
    kinds = {op.op_type for op in operations}
    assert {"conv", "batch_norm", "relu", "max_pool", "avg_pool", "conv_transpose"} <= kinds
    assert {"sigmoid", "reduce_mean", "linear", "reshape"} <= kinds
    nodes = onnx.load(str(source)).graph.node
    # Every ONNX node names the MIL op that yields its output (Constants are folded weights).
    computing = {node.name for node in nodes if node.op_type != "Constant"}
    assert computing and computing <= {record.get(op.name, op.name) for op in operations}


def test_dynamic_batch_is_a_range_dim(cnn: tuple[Path, Path]) -> None:
    array = load_spec(cnn[1]).description.input[0].type.multiArrayType
    ranges = [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges]
    assert ranges == [(1, FLEXIBLE_DIM_LIMIT), (3, 3), (16, 16), (16, 16)]


def test_compute_precision_is_float32_by_default(cnn: tuple[Path, Path]) -> None:
    program = load_mil_program(cnn[1])
    assert "cast" not in {op.op_type for op in program.functions["main"].operations}


@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_reimported_matches_onnxruntime(
    cnn: tuple[Path, Path], framework: CoreMLFramework, batch: int
) -> None:
    source, package = cnn
    feeds = {
        "input.1": np.random.default_rng(batch).standard_normal((batch, 3, 16, 16), np.float32)
    }
    expected = run_onnxruntime(ir.load(source), feeds)
    actual = _reimported_outputs(framework, package, feeds)
    np.testing.assert_allclose(actual["out:0"], expected["out:0"], rtol=1e-4, atol=1e-5)


def test_transformer_block_reimported_matches_onnxruntime(
    transformer: tuple[Path, Path], framework: CoreMLFramework
) -> None:
    source, package = transformer
    kinds = {op.op_type for op in load_mil_program(package).functions["main"].operations}
    assert {"matmul", "softmax", "layer_norm", "erf", "shape", "reshape"} <= kinds
    feeds = {"tokens": np.random.default_rng(0).standard_normal((3, 5, 16), np.float32)}
    expected = run_onnxruntime(ir.load(source), feeds)
    actual = _reimported_outputs(framework, package, feeds)
    np.testing.assert_allclose(actual["out:0"], expected["out:0"], rtol=1e-4, atol=1e-5)


def test_unsupported_ops_are_all_listed_and_nothing_is_written(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("RandomNormalLike", ["x"], ["d"], name="random_node"),
            helper.make_node("Relu", ["x"], ["r"], name="relu_node"),
            helper.make_node("Unique", ["r"], ["nz"], name="unique_node"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [
            helper.make_tensor_value_info("d", TensorProto.FLOAT, [3, 3]),
            helper.make_tensor_value_info("nz", TensorProto.FLOAT, [None]),
        ],
    )
    source = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), source)
    target = tmp_path / "two.mlpackage"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(target)])
    assert result.exit_code == 3, result.output
    assert "random_node" in result.output and "unique_node" in result.output
    assert "Traceback" not in result.output
    assert not target.exists()
