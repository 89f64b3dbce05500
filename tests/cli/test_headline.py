"""The user's headline: PyTorch -> Caffe2 with validation against PyTorch itself, then on to ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from unframe.cli.main import cli

pytest.importorskip("torch", reason="the pytorch extra is not installed")
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_model.py"


def test_pytorch_factory_to_caffe2_to_onnx_validates(tmp_path):
    runner = CliRunner()
    net = tmp_path / "demo_net"
    result = runner.invoke(
        cli,
        [
            "convert",
            f"{DEMO}:make_model",
            "--input",
            "x=2,3,32,32",
            "--from",
            "pytorch",
            "--to",
            "caffe2",
            "-o",
            str(net),
            "--validate",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["from"] == "pytorch" and data["to"] == "caffe2"
    # The reference is the user's own module run by torch, the candidate the NetDef run by the
    # executor: neither side is our import of the other.
    assert "pytorch's runtime" in data["validation"]["how"]
    assert "caffe2's runtime" in data["validation"]["how"]
    (output,) = data["validation"]["outputs"]
    assert output["shape"] == [2, 10] and output["ok"]
    assert sorted(p.name for p in net.iterdir()) == [
        "init_net.pb",
        "predict_net.pb",
        "value_info.json",
    ]

    onnx_path = tmp_path / "demo.onnx"
    result = runner.invoke(
        cli, ["convert", str(net), "--from", "caffe2", "-o", str(onnx_path), "--validate", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["validation"]["ok"]
    ops = {node.op_type for node in onnx.load(onnx_path).graph.node}
    assert {"Conv", "Softmax"} <= ops
