"""ONNX -> TensorFlow SavedModel: outputs against onnxruntime, names, dynamic batch, layout.

Oracle: onnxruntime on the source ONNX model (rtol 1e-4, atol 1e-5). TensorFlow is imported once
per module; the models are tiny.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
torch = pytest.importorskip("torch", reason="the models are exported from torch")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, save_saved_model, to_tensorflow  # noqa: E402
from unframe.cli.main import cli  # noqa: E402
from unframe.converters.adapters.tensorflow import TensorFlowFramework  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


class _CNN(torch.nn.Module):
    """Conv -> BN -> Relu -> MaxPool, a grouped and a depthwise Conv, GAP, Flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.conv3 = torch.nn.Conv2d(8, 16, 1, groups=2)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.nn.functional.avg_pool2d(torch.relu(self.conv3(self.conv2(x))), 2, 1, 1)
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return torch.softmax(self.fc(x), dim=-1)


class _MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 12)
        self.norm = torch.nn.LayerNorm(12)
        self.fc2 = torch.nn.Linear(12, 3)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.nn.functional.gelu(self.norm(self.fc1(x)))
        out = torch.sigmoid(self.fc2(hidden)) + bias
        return out, hidden.mean(dim=-1, keepdim=True)


def _export(module: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str]) -> bytes:
    torch.manual_seed(0)
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    if isinstance(module, _CNN):
        module.bn1.running_mean.uniform_(-1, 1)
        module.bn1.running_var.uniform_(0.5, 2)
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in [*inputs, *outputs]}
    torch.onnx.export(
        module.eval(),
        args,
        buffer,
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=dynamic,
        opset_version=18,
        dynamo=False,
    )
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cnn_onnx() -> bytes:
    return _export(_CNN(), (torch.randn(2, 3, 16, 16),), ["image"], ["probs"])


@pytest.fixture(scope="module")
def mlp_onnx() -> bytes:
    args = (torch.randn(2, 6), torch.randn(2, 3))
    return _export(_MLP(), args, ["features", "bias"], ["scores", "mean_hidden"])


def _feeds(proto: onnx.ModelProto, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in proto.graph.input:
        dims = [d.dim_value or batch for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


@pytest.fixture(scope="module")
def saved_cnn(tmp_path_factory, cnn_onnx):
    path = tmp_path_factory.mktemp("cnn") / "cnn.savedmodel"
    path.mkdir()
    built = save_saved_model(ir.from_proto(onnx.load_from_string(cnn_onnx)), path)
    return path, built


@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_saved_model_matches_onnxruntime_at_two_batch_sizes(saved_cnn, cnn_onnx, batch):
    path, _ = saved_cnn
    proto = onnx.load_from_string(cnn_onnx)
    feeds = _feeds(proto, batch, seed=batch)
    expected = ort.InferenceSession(cnn_onnx).run(None, feeds)
    got = TensorFlowFramework().run(path, feeds)
    assert list(got) == ["probs"]
    np.testing.assert_allclose(got["probs"], expected[0], rtol=RTOL, atol=ATOL)


def test_conv_chain_adds_one_transpose_at_its_input_boundary(saved_cnn):
    # One NCHW image input and a [N, 5] output: the Conv/BN/Relu/pool region runs NHWC from a
    # single Transpose; GAP's [N, 1, 1, C] leaves it by a Reshape (only unit axes move).
    _, built = saved_cnn
    assert built.transposes == 1


@pytest.mark.parametrize("batch", [1, 4])
def test_mlp_keeps_input_and_output_names_and_order(mlp_onnx, batch):
    proto = onnx.load_from_string(mlp_onnx)
    built = to_tensorflow(ir.from_proto(proto))
    assert built.input_names == ["features", "bias"]
    assert built.output_names == ["scores", "mean_hidden"]
    assert built.transposes == 0
    signature = built.function.structured_input_signature[0]
    assert [spec.name for spec in signature] == ["features", "bias"]
    assert [spec.shape.as_list() for spec in signature] == [[None, 6], [None, 3]]
    feeds = _feeds(proto, batch, seed=10 + batch)
    expected = ort.InferenceSession(mlp_onnx).run(None, feeds)
    got = run_built(built, feeds)
    assert list(got) == ["scores", "mean_hidden"]
    for name, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL)


def test_saved_model_loads_and_runs_without_unframe(saved_cnn, cnn_onnx):
    path, _ = saved_cnn
    feeds = _feeds(onnx.load_from_string(cnn_onnx), 2, seed=7)
    np.save(path.parent / "image.npy", feeds["image"])
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "unframe" or name.startswith("unframe."):
                    raise ImportError("unframe is blocked in this process")
        sys.meta_path.insert(0, Block())
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        function = loaded.signatures["serving_default"]
        image = np.load({str(path.parent / "image.npy")!r})
        result = function(image=tf.constant(image))
        np.save({str(path.parent / "probs.npy")!r}, result["probs"].numpy())
        print([name.decode() for name in loaded.onnx_output_names.numpy()])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        cwd=path.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['probs']" in done.stdout
    expected = ort.InferenceSession(cnn_onnx).run(None, feeds)[0]
    np.testing.assert_allclose(np.load(path.parent / "probs.npy"), expected, rtol=RTOL, atol=ATOL)


def test_unsupported_ops_are_all_listed_and_nothing_is_written(tmp_path):
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="fine"),
            # Ops of a domain no backend knows (Det and NonMaxSuppression, once refused, convert).
            helper.make_node("Mystery", ["r"], ["d"], name="det_node", domain="com.example"),
            helper.make_node("Riddle", ["r", "s"], ["y"], name="nms_node", domain="com.example"),
        ],
        "refused",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, 3]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.INT64, [None, 3]),
            helper.make_tensor_value_info("d", TensorProto.FLOAT, [1]),
        ],
    )
    source = tmp_path / "refused.onnx"
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), source)
    target = tmp_path / "out.savedmodel"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(target)])
    assert result.exit_code == 3, result.output
    assert "det_node" in result.output and "nms_node" in result.output
    assert not target.exists()


def test_cli_converts_to_a_saved_model_that_validates(tmp_path, cnn_onnx):
    source = tmp_path / "cnn.onnx"
    source.write_bytes(cnn_onnx)
    target = tmp_path / "cnn.savedmodel"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(target), "--validate"])
    assert result.exit_code == 0, result.output
    assert (target / "saved_model.pb").is_file()
    assert TensorFlowFramework().is_own_output(target)
    assert not TensorFlowFramework().is_own_output(tmp_path)
