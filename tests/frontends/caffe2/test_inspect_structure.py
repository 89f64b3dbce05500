"""``unframe inspect`` lists a Caffe2 net without weights or input shapes; converting still refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from unframe.backends.caffe2.native.netdef import read_netdef
from unframe.cli.main import cli
from unframe.shared_ir.errors import ExitCode

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "caffe2"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"third-party Caffe2 fixtures not found at {FIXTURES}"
)


def _inspect(path: Path) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert isinstance(summary, dict)
    return summary


@needs_fixtures
def test_a_zoo_pbtxt_alone_lists_its_data_input_output_and_ops() -> None:
    # The zoo's ResNet-50: 53 Conv with SpatialBN, 16 Sum, weights in Git LFS (absent).
    summary = _inspect(FIXTURES / "zoo" / "resnet50" / "predict_net.pbtxt")
    assert summary["inputs"] == [
        {"name": "gpu_0/data", "shape": [1, 3, 224, 224], "dtype": "float"}
    ]
    assert [o["name"] for o in summary["outputs"]] == ["gpu_0/softmax"]  # type: ignore[attr-defined]
    ops = summary["ops"]
    assert isinstance(ops, dict)
    assert (ops["Conv"], ops["BatchNormalization"], ops["Sum"]) == (53, 53, 16)
    assert summary["parameters"] == 0


@needs_fixtures
def test_a_folder_with_only_a_binary_predict_net(tmp_path: Path) -> None:
    net = read_netdef(FIXTURES / "zoo" / "bvlc_alexnet" / "predict_net.pbtxt")
    (tmp_path / "predict_net.pb").write_bytes(net.SerializeToString())
    summary = _inspect(tmp_path)
    # No value_info: the first external input is the data, the other ones read are weights.
    assert [i["name"] for i in summary["inputs"]] == ["data"]  # type: ignore[attr-defined]
    assert [o["name"] for o in summary["outputs"]] == ["prob"]  # type: ignore[attr-defined]
    ops = summary["ops"]
    assert isinstance(ops, dict)
    assert (ops["Conv"], ops["MaxPool"], ops["Gemm"], ops["LRN"]) == (5, 3, 3, 2)
    # Converting needs the weights.
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(tmp_path), "-o", str(out)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "no init net" in result.output and not out.exists()


@needs_fixtures
def test_ops_that_need_shapes_say_so_only_when_converting(tmp_path: Path) -> None:
    # MTCNN's P-Net has no value_info: PRelu needs its input's rank.
    summary = _inspect(FIXTURES / "mtcnn_pnet")
    ops = summary["ops"]
    assert isinstance(ops, dict)
    assert ops["caffe2::PRelu"] == 3 and ops["Conv"] == 5
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(FIXTURES / "mtcnn_pnet"), "-o", str(out)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    (line,) = result.output.strip().splitlines()
    assert "PRelu" in line and "--input data=" in line and not out.exists()


def test_an_op_without_a_converter_is_listed_by_inspect_and_refused_by_convert(
    tmp_path: Path,
) -> None:
    (tmp_path / "predict_net.pbtxt").write_text(
        'op { type: "Relu" input: "x" output: "a" }\n'
        'op { type: "Frobnicate" input: "a" output: "b" }\n'
        'external_input: "x"\nexternal_output: "b"\n',
        encoding="utf-8",
    )
    (tmp_path / "value_info.json").write_text('{"x": [1, [2, 3]]}', encoding="utf-8")
    (tmp_path / "init_net.pbtxt").write_text('name: "no weights"\n', encoding="utf-8")
    summary = _inspect(tmp_path / "predict_net.pbtxt")
    assert summary["ops"] == {"Relu": 1, "caffe2::Frobnicate": 1}
    assert summary["inputs"] == [{"name": "x", "shape": [2, 3], "dtype": "float"}]
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(tmp_path), "-o", str(out)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "Frobnicate" in result.output and not out.exists()
