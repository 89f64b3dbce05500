"""ONNX and PyTorch -> .tflite, run on LiteRT (ai-edge-litert) against the source's own runtime.

Oracles: onnxruntime on the source ONNX model, PyTorch on the source ``.pt2`` (rtol 1e-4,
atol 1e-5 for float32). TensorFlow and LiteRT are imported once per module; the models are tiny.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
torch = pytest.importorskip("torch", reason="the models are written by torch")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tflite import run_export, to_tflite  # noqa: E402
from unframe.backends.tflite.native import read_tflite, schema  # noqa: E402
from unframe.cli.main import cli  # noqa: E402
from unframe.converters import api  # noqa: E402
from unframe.converters.adapters.tflite import TFLiteFramework  # noqa: E402
from unframe.shared_ir.errors import ExitCode, UnsupportedOpsError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


class _CNN(torch.nn.Module):
    """Conv -> BN -> Relu -> MaxPool, a depthwise Conv, global average pool, Linear, Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x)).mean(dim=(2, 3))
        return torch.softmax(self.fc(x), dim=-1)


class _Block(torch.nn.Module):
    """A pre-norm transformer encoder block: LayerNorm, multi-head self-attention, MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(
            d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer(tokens)


def _seeded(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    if isinstance(module, _CNN):
        module.bn1.running_mean.uniform_(-1, 1)
        module.bn1.running_var.uniform_(0.5, 2)
    return module.eval()


MODELS = {
    "cnn": (_CNN, (1, 3, 16, 16), "image", "probs"),
    "block": (_Block, (2, 6, 16), "tokens", "encoded"),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each model as ``.onnx`` (torch.onnx) and ``.pt2`` (torch.export), written once."""
    folder = tmp_path_factory.mktemp("sources")
    written = {}
    for name, (factory, shape, input_name, output_name) in MODELS.items():
        module = _seeded(factory())
        example = (torch.randn(*shape),)
        onnx_path, pt2_path = folder / f"{name}.onnx", folder / f"{name}.pt2"
        buffer = io.BytesIO()
        torch.onnx.export(
            module,
            example,
            buffer,
            input_names=[input_name],
            output_names=[output_name],
            opset_version=18,
            dynamo=False,
        )
        onnx_path.write_bytes(buffer.getvalue())
        torch.export.save(torch.export.export(module, example), pt2_path)
        written[name] = (onnx_path, pt2_path)
    return written


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("source", ["onnx", "pytorch"])
def test_model_to_tflite_validates_on_litert(
    model: str, source: str, sources: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    onnx_path, pt2_path = sources[model]
    src = onnx_path if source == "onnx" else pt2_path
    out = tmp_path / f"{model}.tflite"
    result = api.convert(src, out, validate=True, rtol=RTOL, atol=ATOL)
    assert result.validation is not None
    assert "tflite" in result.validation.how
    assert result.validation.ok, result.validation.as_json()
    # The file runs on its own; from ONNX it keeps the source's output name (a .pt2's outputs
    # are named by torch.export, not by the user).
    _, shape, input_name, output_name = MODELS[model]
    feed = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    outputs = TFLiteFramework().run(out, {input_name: feed})
    if source == "onnx":
        assert list(outputs) == [output_name]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {input_name: feed})[0]
    (got,) = outputs.values()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def _two_in_two_out() -> onnx.ModelProto:
    """Names TFLite must sanitize (``:``, ``.``) and sorts differently from the graph's order."""
    x = helper.make_tensor_value_info("zeta.x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["batch", 4])
    first = helper.make_tensor_value_info("out:sum", TensorProto.FLOAT, ["batch", 4])
    second = helper.make_tensor_value_info("a_max", TensorProto.FLOAT, ["batch", 4])
    nodes = [
        helper.make_node("Add", ["zeta.x", "alpha"], ["out:sum"], name="add"),
        helper.make_node("Max", ["zeta.x", "alpha"], ["a_max"], name="max"),
    ]
    graph = helper.make_graph(nodes, "g", [x, y], [first, second])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_names_order_and_dynamic_batch_are_kept() -> None:
    proto = _two_in_two_out()
    export = to_tflite(ir.from_proto(proto))
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        feeds = {
            "zeta.x": rng.standard_normal((batch, 4)).astype(np.float32),
            "alpha": rng.standard_normal((batch, 4)).astype(np.float32),
        }
        outputs = run_export(export, feeds)
        assert list(outputs) == ["out:sum", "a_max"]
        np.testing.assert_allclose(outputs["out:sum"], feeds["zeta.x"] + feeds["alpha"], 1e-6)
        np.testing.assert_array_equal(outputs["a_max"], np.maximum(feeds["zeta.x"], feeds["alpha"]))


def test_float16_precision_stores_half_weights(
    sources: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    onnx_path, _ = sources["cnn"]
    full, half = tmp_path / "full.tflite", tmp_path / "half.tflite"
    api.convert(onnx_path, full)
    api.convert(onnx_path, half, precision="float16")
    float16 = schema().TensorType.FLOAT16

    def half_tensors(path: Path) -> int:
        model = schema().ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
        return sum(t.type == float16 for g in model.subgraphs for t in g.tensors)

    assert half_tensors(full) == 0
    assert half_tensors(half) >= 4  # both conv kernels and biases, the Linear's weight...
    assert read_tflite(half).onnx_inputs == [("image", "image")]
    feed = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": feed})[0]
    got = TFLiteFramework().run(half, {"image": feed})["probs"]
    np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-3)


def test_nhwc_layout_takes_images_channels_last(
    sources: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    onnx_path, _ = sources["cnn"]
    out = tmp_path / "nhwc.tflite"
    result = api.convert(onnx_path, out, validate=True, rtol=RTOL, atol=ATOL, layout="nhwc")
    assert result.validation is not None and result.validation.ok, result.validation.as_json()
    written = read_tflite(out)
    assert written.nhwc_inputs == ["image"]
    model = schema().ModelT.InitFromPackedBuf(bytearray(out.read_bytes()), 0)
    (image,) = [t for t in model.subgraphs[0].tensors if t.name == b"serving_default_image:0"]
    assert list(image.shape) == [1, 16, 16, 3]


def test_ops_tflite_lacks_are_listed_node_by_node(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [
        helper.make_node("Det", ["x"], ["a"], name="first_det"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Mod", ["b", "b"], ["c"], name="scope/mod", fmod=1),
        helper.make_node("Mod", ["c", "b"], ["y"], name="second_mod", fmod=1),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    src = tmp_path / "lacking.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), src)
    out = tmp_path / "lacking.tflite"
    result = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "Traceback" not in result.output
    listed = [
        line.strip() for line in result.output.splitlines() if line.strip().startswith("node")
    ]
    assert [line.split(":")[0] for line in listed] == [
        "node 'first_det'",
        "node 'scope/mod'",
        "node 'second_mod'",
    ]
    assert "Flex" in listed[0]
    assert not out.exists()


def test_uint8_equal_runs_in_int32_and_a_uint8_equal_litert_aborts_on_is_refused() -> None:
    """LiteRT 2.3's EQUAL aborts the process on unquantized uint8 (onnx's test_equal_uint8):
    unframe's export compares in int32; a file holding such an EQUAL is refused before it runs."""
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [3, 4])
    z = helper.make_tensor_value_info("z", TensorProto.BOOL, [3, 4])
    graph = helper.make_graph([helper.make_node("Equal", ["x", "y"], ["z"])], "g", [x, y], [z])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(6)
    feed = {name: rng.integers(0, 3, (3, 4)).astype(np.uint8) for name in ("x", "y")}
    got = run_export(to_tflite(ir.from_proto(model)), feed)["z"]
    np.testing.assert_array_equal(got, feed["x"] == feed["y"])

    import tensorflow as tf

    from unframe.backends.tflite.driver import _refuse_what_litert_aborts_on

    spec = tf.TensorSpec([3, 4], tf.uint8)
    function = tf.function(lambda a, b: tf.equal(a, b)).get_concrete_function(spec, spec)
    data = tf.lite.TFLiteConverter.from_concrete_functions([function]).convert()
    with pytest.raises(UnsupportedOpsError, match="EQUAL") as error:
        _refuse_what_litert_aborts_on(data, {}, None)
    assert "aborts on uint8" in error.value.ops[0].reason


def test_a_node_xnnpack_refuses_runs_on_litert_kernels() -> None:
    """XNNPACK fails to prepare this dilated 3-D pool's SUM; LiteRT's own kernels run it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    pool = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[2, 2, 2], dilations=[2, 2, 2]
    )
    proto = helper.make_model(
        helper.make_graph([pool], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 19)]
    )
    feed = np.random.default_rng(4).standard_normal((1, 1, 6, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"x": feed})
    got = run_export(to_tflite(ir.from_proto(proto)), {"x": feed})["y"]
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_types_and_functions_tflite_lacks_run_as_builtins() -> None:
    """int8/int16/uint8 arithmetic and comparisons run in int32, C's integer division from
    FloorDiv, Erf/Acos/Atanh from builtin formulas: LiteRT's outputs are onnxruntime's."""
    names = {"i8": TensorProto.INT8, "i16": TensorProto.INT16, "u8": TensorProto.UINT8}
    inputs = [helper.make_tensor_value_info(n, t, [4, 5]) for n, t in names.items()]
    inputs.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, [4, 5]))
    nodes = [
        helper.make_node("Add", ["i8", "i8"], ["i8_sum"]),
        helper.make_node("Div", ["i16", "i16_divisor"], ["i16_quotient"]),
        helper.make_node("Less", ["u8", "u8_other"], ["u8_less"]),
        helper.make_node("Max", ["u8", "u8_other"], ["u8_max"]),
        helper.make_node("Erf", ["f"], ["f_erf"]),
        helper.make_node("Acos", ["f"], ["f_acos"]),
        helper.make_node("Atanh", ["f"], ["f_atanh"]),
    ]
    constants = [
        helper.make_tensor("i16_divisor", TensorProto.INT16, [5], [3, -3, 7, -2, 1]),
        helper.make_tensor("u8_other", TensorProto.UINT8, [5], [0, 100, 200, 255, 7]),
    ]
    types = [TensorProto.INT8, TensorProto.INT16, TensorProto.BOOL, TensorProto.UINT8]
    types += [TensorProto.FLOAT] * 3
    outputs = [
        helper.make_tensor_value_info(n.output[0], t, None)
        for n, t in zip(nodes, types, strict=True)
    ]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(5)
    feed = {
        "i8": rng.integers(-128, 128, (4, 5)).astype(np.int8),
        "i16": rng.integers(-30000, 30000, (4, 5)).astype(np.int16),
        "u8": rng.integers(0, 256, (4, 5)).astype(np.uint8),
        "f": rng.uniform(-0.99, 0.99, (4, 5)).astype(np.float32),
    }
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = dict(zip([n.output[0] for n in nodes], session.run(None, feed), strict=True))
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, name
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL, err_msg=name)


def test_inputs_named_with_python_keywords_keep_the_signature() -> None:
    # tf.function renames an argument named like a Python keyword, so TFLite lost the signature
    # and the runner fell back to a path that made a scalar input 1-D.
    x = helper.make_tensor_value_info("from", TensorProto.FLOAT, [])
    y = helper.make_tensor_value_info("lambda", TensorProto.FLOAT, [3])
    out = helper.make_tensor_value_info("return", TensorProto.FLOAT, [3])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["from", "lambda"], ["return"])], "g", [x, y], [out]
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    feeds = {"from": np.array(2.5, np.float32), "lambda": np.array([1.0, -2.0, 4.0], np.float32)}
    outputs = run_export(to_tflite(ir.from_proto(proto)), feeds)
    assert list(outputs) == ["return"]
    assert outputs["return"].shape == (3,)
    np.testing.assert_array_equal(outputs["return"], feeds["from"] * feeds["lambda"])
