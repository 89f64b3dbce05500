"""A framework added by a plugin works end to end: installed through a real entry point (a
dist-info on the path, as pip leaves it), named by ``--from``/``--to``, converted both ways by the
``unframe`` command, and checked against onnxruntime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import unframe.converters.registry as registry
from unframe.cli.main import cli

TOY_SOURCE = Path(__file__).parent / "toy_framework" / "toyfw.py"


def install_toyfw(site: Path) -> Path:
    """Installs toyfw into ``site`` as pip would: the module and a dist-info naming its entry
    point in unframe's group."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOY_SOURCE, site / "toyfw.py")
    info = site / "toyfw-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfw\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unframe.frameworks]\ntoyfw = toyfw:ToyFramework\n")
    return site


def unframe(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``unframe`` command in a fresh interpreter that sees ``site`` on its path."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "unframe", *args],
        env={**os.environ, "PYTHONPATH": path},
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def mlp(last: str = "Sigmoid") -> onnx.ModelProto:
    """x[batch, 4] -> MatMul -> Add -> Relu -> MatMul -> Add -> Mul -> ``last`` -> y[batch, 3]."""
    rng = np.random.default_rng(7)
    weights = {
        "w1": rng.standard_normal((4, 8)),
        "b1": rng.standard_normal(8),
        "w2": rng.standard_normal((8, 3)),
        "b2": rng.standard_normal(3),
        "scale": np.full(3, 0.5),
    }
    steps = [
        ("MatMul", ["x", "w1"]),
        ("Add", ["h0", "b1"]),
        ("Relu", ["h1"]),
        ("MatMul", ["h2", "w2"]),
        ("Add", ["h3", "b2"]),
        ("Mul", ["h4", "scale"]),
        (last, ["h5"]),
    ]
    nodes = [
        helper.make_node(op, inputs, [f"h{i}" if i < len(steps) - 1 else "y"], name=f"n{i}")
        for i, (op, inputs) in enumerate(steps)
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(value.astype(np.float32), name)
            for name, value in weights.items()
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run_onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    return y


def test_onnx_to_toyfw_and_back_keeps_the_outputs(tmp_path):
    site = install_toyfw(tmp_path / "site")
    source = tmp_path / "mlp.onnx"
    onnx.save(mlp(), source)
    toy = tmp_path / "mlp.toy"

    done = unframe(
        site, "convert", str(source), "-o", str(toy), "--to", "toyfw", "--validate", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["to"] == "toyfw" and report["ok"]
    # Validated by running toyfw's own numpy runtime against onnxruntime on the source.
    assert "toyfw's runtime" in report["validation"]["how"]
    assert all(output["ok"] for output in report["validation"]["outputs"])
    document = json.loads(toy.read_text())
    assert [layer["kind"] for layer in document["layers"]] == [
        "matmul",
        "add",
        "relu",
        "matmul",
        "add",
        "mul",
        "sigmoid",
    ]

    back = tmp_path / "back.onnx"
    done = unframe(site, "convert", str(toy), "-o", str(back), "--from", "TOYFW", "--to", "onnx")
    assert done.returncode == 0, done.stderr
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        run_onnxruntime(back, x), run_onnxruntime(source, x), rtol=1e-5, atol=1e-6
    )


def test_the_plugin_is_listed_and_detected_from_its_suffix(tmp_path):
    site = install_toyfw(tmp_path / "site")
    listed = unframe(site, "frameworks", "--json")
    assert listed.returncode == 0, listed.stderr
    (toy,) = [fw for fw in json.loads(listed.stdout) if fw["name"] == "toyfw"]
    assert toy["reads"] == [".toy"] and toy["run"]

    source = tmp_path / "mlp.onnx"
    onnx.save(mlp(), source)
    done = unframe(site, "convert", str(source), "-o", str(tmp_path / "m.toy"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["to"] == "toyfw"


def test_an_op_the_plugin_lacks_exits_3_before_writing(tmp_path):
    site = install_toyfw(tmp_path / "site")
    source = tmp_path / "mlp.onnx"
    onnx.save(mlp(last="Softmax"), source)
    out = tmp_path / "mlp.toy"
    done = unframe(site, "convert", str(source), "-o", str(out), "--to", "toyfw")
    assert done.returncode == 3, done.stderr
    assert "node 'n6': Softmax" in done.stderr and "no toyfw export converter" in done.stderr
    assert not out.exists()


@pytest.fixture
def toyfw_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """toyfw installed in this process; the registry forgets what it read before and after."""
    monkeypatch.syspath_prepend(str(install_toyfw(tmp_path / "site")))
    registry._entry_points.cache_clear()
    registry.get_framework.cache_clear()
    yield
    registry._entry_points.cache_clear()
    registry.get_framework.cache_clear()
    sys.modules.pop("toyfw", None)


@pytest.mark.usefixtures("toyfw_on_path")
def test_the_registry_names_the_plugin_from_its_entry_point():
    assert registry.framework_names()[:3] == ["onnx", "pytorch", "caffe2"]
    assert "toyfw" in registry.framework_names()
    assert registry.get_framework("toyfw").reads == (".toy",)


def test_an_unknown_framework_is_refused_when_parsed_naming_the_known_ones(tmp_path):
    result = CliRunner().invoke(
        cli, ["convert", "m.onnx", "-o", str(tmp_path / "m.toy"), "--to", "toyfw"]
    )
    assert result.exit_code == 2
    assert "'toyfw' is not one of onnx, pytorch, caffe2" in result.stderr
