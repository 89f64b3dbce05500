"""``--layout nhwc``: image inputs/outputs channels-last with no boundary Transposes, the record
of which in the SavedModel, and the CLI's TensorFlow/Core ML/TFLite options.

Oracle: onnxruntime on the source ONNX graph (built here with onnx.helper, NCHW), transposed by
hand to NHWC where the signature takes or gives NHWC; TensorFlow is imported once per module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

tf = pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402
from unframe.backends.tensorflow.native import run_saved_model  # noqa: E402
from unframe.cli.main import cli  # noqa: E402
from unframe.frontends.tensorflow import load_tensorflow  # noqa: E402
from unframe.shared_ir.options import ConvertOptions  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
NHWC, NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _segmenter() -> onnx.ModelProto:
    """img (N,3,8,8) -> Conv -> Relu -> Conv + 1 -> seg (N,4,8,8), an image output; and
    ReduceMean(spatial) + offset -> vec (N,8); offset (N,8) is no image; grid (N,2,3,4) is 4-D
    but read by a MatMul, so it is no image either."""
    rng = np.random.default_rng(0)
    weights = [
        helper.make_tensor("w1", TensorProto.FLOAT, [8, 3, 3, 3], rng.standard_normal(216)),
        helper.make_tensor("b1", TensorProto.FLOAT, [8], rng.standard_normal(8)),
        helper.make_tensor("w2", TensorProto.FLOAT, [4, 8, 1, 1], rng.standard_normal(32)),
        helper.make_tensor("b2", TensorProto.FLOAT, [4], rng.standard_normal(4)),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("m", TensorProto.FLOAT, [4, 5], rng.standard_normal(20)),
    ]
    nodes = [
        helper.make_node("Conv", ["img", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], "conv2"),
        helper.make_node("Add", ["c2", "one"], ["seg"], "plus_one"),
        helper.make_node("ReduceMean", ["r1", "axes"], ["mean"], "gap", keepdims=0),
        helper.make_node("Add", ["mean", "offset"], ["vec"], "offset_add"),
        helper.make_node("MatMul", ["grid", "m"], ["projected"], "project"),
    ]
    graph = helper.make_graph(
        nodes,
        "segmenter",
        [
            helper.make_tensor_value_info("img", TensorProto.FLOAT, ["batch", 3, 8, 8]),
            helper.make_tensor_value_info("offset", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["batch", 2, 3, 4]),
        ],
        [
            helper.make_tensor_value_info("seg", TensorProto.FLOAT, ["batch", 4, 8, 8]),
            helper.make_tensor_value_info("vec", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("projected", TensorProto.FLOAT, ["batch", 2, 3, 5]),
        ],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture(scope="module")
def source() -> onnx.ModelProto:
    return _segmenter()


@pytest.fixture(scope="module")
def feeds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "img": rng.standard_normal((2, 3, 8, 8)).astype(np.float32),
        "offset": rng.standard_normal((2, 8)).astype(np.float32),
        "grid": rng.standard_normal((2, 2, 3, 4)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def expected(source: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(source.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(["seg", "vec", "projected"], session.run(None, feeds), strict=True))


def _build(source: onnx.ModelProto, layout: str) -> Any:
    return to_tensorflow(ir.from_proto(source), layout=layout)


def test_default_layout_keeps_onnx_signature_with_one_transpose_per_image_boundary(
    source: onnx.ModelProto, feeds: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> None:
    built = _build(source, "onnx")
    shapes = [spec.shape.as_list() for spec in built.function.structured_input_signature[0]]
    assert shapes == [[None, 3, 8, 8], [None, 8], [None, 2, 3, 4]]
    # into the Conv region at img, out of it at seg: one per 4-D image input and output
    assert built.transposes == 2
    assert (built.nhwc_inputs, built.nhwc_outputs) == ([], [])
    for name, value in run_built(built, feeds).items():
        np.testing.assert_allclose(value, expected[name], RTOL, ATOL, err_msg=name)


def test_nhwc_layout_takes_and_gives_images_channels_last_with_no_transposes(
    source: onnx.ModelProto, feeds: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> None:
    built = _build(source, "nhwc")
    assert built.transposes == 0
    # grid is 4-D but its first user (MatMul) wants ONNX's layout; offset is not 4-D
    assert (built.nhwc_inputs, built.nhwc_outputs) == (["img"], ["seg"])
    shapes = [spec.shape.as_list() for spec in built.function.structured_input_signature[0]]
    assert shapes == [[None, 8, 8, 3], [None, 8], [None, 2, 3, 4]]
    raw = built.function(
        tf.constant(feeds["img"].transpose(NHWC)),
        tf.constant(feeds["offset"]),
        tf.constant(feeds["grid"]),
    )
    np.testing.assert_allclose(raw["seg"].numpy(), expected["seg"].transpose(NHWC), RTOL, ATOL)
    np.testing.assert_allclose(raw["vec"].numpy(), expected["vec"], RTOL, ATOL)
    np.testing.assert_allclose(raw["projected"].numpy(), expected["projected"], RTOL, ATOL)
    # run_built feeds and returns ONNX's layout
    for name, value in run_built(built, feeds).items():
        np.testing.assert_allclose(value, expected[name], RTOL, ATOL, err_msg=name)


@pytest.mark.parametrize("layout", ["onnx", "nhwc"])
def test_a_model_that_takes_nhwc_itself_runs_with_no_transposes(
    feeds: dict[str, np.ndarray], layout: str
) -> None:
    """Transpose(NHWC->NCHW) -> Conv, as tf2onnx writes Keras models: the Conv reads the input
    as it comes (no Transpose), the signature stays NHWC, and a reader in ONNX's layout (Flatten) still gets
    the transposed tensor."""
    w = np.random.default_rng(2).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["x"], ["t"], "to_nchw", perm=list(NCHW)),
            helper.make_node("Conv", ["t", "w"], ["y"], "conv"),
            helper.make_node("Flatten", ["t"], ["flat"], "flatten"),
        ],
        "keras_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6]),
            helper.make_tensor_value_info("flat", TensorProto.FLOAT, [1, 192]),
        ],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    built = _build(model, layout)
    # the input needs none; the 4-D output y one back to NCHW unless nhwc returns it as held
    assert built.nhwc_inputs == []
    assert (built.transposes, built.nhwc_outputs) == ((1, []) if layout == "onnx" else (0, ["y"]))
    x = feeds["img"][:1].transpose(NHWC).copy()
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    got = run_built(built, {"x": x})
    np.testing.assert_allclose(got["y"], want[0], RTOL, ATOL)
    np.testing.assert_array_equal(got["flat"], want[1])


def test_nhwc_saved_model_records_its_layout_for_run_and_reimport(
    source: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    expected: dict[str, np.ndarray],
    tmp_path: Path,
) -> None:
    (tmp_path / "seg.onnx").write_bytes(source.SerializeToString())
    out = tmp_path / "seg.savedmodel"
    result = CliRunner().invoke(
        cli, ["convert", str(tmp_path / "seg.onnx"), "-o", str(out), "--layout", "nhwc", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["transposes_added"] == 0
    assert any("inputs: img; outputs: seg" in w for w in payload["warnings"])
    # TensorFlow alone (no unframe) sees the NHWC signature
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    assert signature.structured_input_signature[1]["img"].shape.as_list() == [None, 8, 8, 3]
    # unframe's runtime feeds and returns the ONNX layout
    for name, value in run_saved_model(out, feeds).items():
        np.testing.assert_allclose(value, expected[name], RTOL, ATOL, err_msg=name)
    # read back, the IR is the ONNX graph's interface again
    model = load_tensorflow(out, ConvertOptions())
    shapes = {v.name: list(v.shape or ()) for v in model.graph.inputs}
    assert shapes["img"][1:] == [3, 8, 8]
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString())
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, session.run(None, feeds), strict=True):
        np.testing.assert_allclose(value, expected[name], RTOL, ATOL, err_msg=name)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "seg.onnx"), str(out)])
    assert result.exit_code == 0, result.output


def test_default_convert_reports_the_transposes_it_added(
    source: onnx.ModelProto, tmp_path: Path
) -> None:
    (tmp_path / "seg.onnx").write_bytes(source.SerializeToString())
    out = tmp_path / "seg.savedmodel"
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "seg.onnx"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "added 2 Transpose(s)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "caffe2", "--layout", "nhwc"], "--layout applies only to a tensorflow"),
        (["--to", "onnx", "--precision", "float16"], "--precision applies only to a coreml"),
        (
            ["--to", "tensorflow", "--signature", "serve"],
            "--signature applies only to a tensorflow",
        ),
        (["--to", "onnx", "--output-node", "y"], "--output-node applies only to a tensorflow"),
        (
            ["--to", "pytorch", "--minimum-deployment-target", "iOS16"],
            "--minimum-deployment-target applies only to a coreml",
        ),
    ],
)
def test_an_option_the_conversion_ignores_is_refused(
    source: onnx.ModelProto, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "seg.onnx").write_bytes(source.SerializeToString())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "seg.onnx"), "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


def test_an_unknown_layout_or_precision_is_bad_usage(
    source: onnx.ModelProto, tmp_path: Path
) -> None:
    (tmp_path / "seg.onnx").write_bytes(source.SerializeToString())
    for flag, value in (("--layout", "nchw"), ("--precision", "int8")):
        result = CliRunner().invoke(
            cli,
            [
                "convert",
                str(tmp_path / "seg.onnx"),
                "-o",
                str(tmp_path / "x.savedmodel"),
                flag,
                value,
            ],
        )
        assert result.exit_code == 2
        assert value in result.stderr
