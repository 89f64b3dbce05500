"""A framework added by a plugin works end to end: installed through a real entry point (a
dist-info on the path, as pip leaves it), named by ``--from``/``--to``, converted both ways by the
``unframe`` command, and checked against onnxruntime."""

from __future__ import annotations

import ast
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
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

import unframe.converters.registry as registry
from unframe.cli.main import cli

TOY_PACKAGE = Path(__file__).parent / "toy_framework" / "toyfw"


def install_toyfw(site: Path) -> Path:
    """Installs toyfw into ``site`` as pip would: the package and a dist-info naming its entry
    point in unframe's group."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TOY_PACKAGE, site / "toyfw", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "toyfw-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfw\nVersion: 0.1\n")
    entry_points = "[unframe.frameworks]\ntoyfw = toyfw.adapter:ToyFramework\n"
    (info / "entry_points.txt").write_text(entry_points)
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
    for module in [name for name in sys.modules if name.split(".")[0] == "toyfw"]:
        del sys.modules[module]


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


def small_model(pows: dict[str, float | None]) -> onnx.ModelProto:
    """x[2, 4] -> MatMul 'mm' -> Mul by a scalar 'half' -> LeakyRelu 'leaky' -> y, and one Pow of
    y per entry of ``pows`` (node name -> exponent; None: the exponent is the graph input 'e')."""
    weights = {"w": np.random.default_rng(3).standard_normal((4, 3)), "scalar": np.array(0.5)}
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h0"], name="mm"),
        helper.make_node("Mul", ["h0", "scalar"], ["h1"], name="half"),
        helper.make_node("LeakyRelu", ["h1"], ["y"], name="leaky", alpha=0.2),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    for name, exponent in pows.items():
        if exponent is None:
            inputs.append(helper.make_tensor_value_info("e", TensorProto.FLOAT, []))
        else:
            weights[f"{name}_exponent"] = np.array(exponent)
        power = "e" if exponent is None else f"{name}_exponent"
        nodes.append(helper.make_node("Pow", ["y", power], [f"{name}_out"], name=name))
        outputs.append(helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2, 3]))
    initializers = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in weights.items()]
    graph = helper.make_graph(nodes, "small", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def convert(*args: str) -> Result:
    """``unframe convert`` in this process (toyfw installed by the ``toyfw_on_path`` fixture)."""
    return CliRunner().invoke(cli, ["convert", *args])


@pytest.mark.usefixtures("toyfw_on_path")
def test_node_and_value_names_survive_onnx_to_toyfw_and_back(tmp_path):
    source, toy, back = tmp_path / "small.onnx", tmp_path / "small.toy", tmp_path / "back.onnx"
    onnx.save(small_model({"square": 2.0}), source)

    done = convert(str(source), "-o", str(toy), "--to", "toyfw")
    assert done.exit_code == 0, done.output
    layers = json.loads(toy.read_text())["layers"]
    assert [(layer["name"], layer["kind"], layer["outputs"]) for layer in layers] == [
        ("mm", "matmul", ["h0"]),
        ("half", "scale", ["h1"]),
        ("leaky", "leaky_relu", ["y"]),
        ("square", "mul", ["square_out"]),
    ]
    done = convert(str(toy), "-o", str(back))
    assert done.exit_code == 0, done.output
    assert [(n.name, n.op_type, list(n.output)) for n in onnx.load(back).graph.node] == [
        ("mm", "MatMul", ["h0"]),
        ("half", "Mul", ["h1"]),
        ("leaky", "LeakyRelu", ["y"]),
        ("square", "Mul", ["square_out"]),
    ]
    # The names are the same values: toyfw's runtime and the model read back compute what
    # onnxruntime computes on the source.
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    expected = ort.InferenceSession(str(source)).run(None, {"x": x})
    on_toyfw = registry.get_framework("toyfw").run(toy, {"x": x})
    read_back = ort.InferenceSession(str(back)).run(None, {"x": x})
    for want, got_toy, got_back in zip(expected, on_toyfw.values(), read_back, strict=True):
        np.testing.assert_allclose(got_toy, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got_back, want, rtol=1e-6, atol=1e-6)


@pytest.mark.usefixtures("toyfw_on_path")
def test_every_node_the_backend_refuses_is_listed_at_once(tmp_path):
    source, out = tmp_path / "small.onnx", tmp_path / "small.toy"
    onnx.save(small_model({"cube": 3.0, "fed": None}), source)
    done = convert(str(source), "-o", str(out), "--to", "toyfw")
    assert done.exit_code == 3, done.output
    assert "toyfw cannot export 1 op type(s) on 2 node(s): Pow x2" in done.stderr
    for node in ("cube", "fed"):
        assert f"node {node!r}: Pow, opset 18: toyfw squares only" in done.stderr
    assert not out.exists()


@pytest.mark.usefixtures("toyfw_on_path")
def test_every_layer_the_frontend_lacks_is_listed_at_once(tmp_path):
    source, toy = tmp_path / "small.onnx", tmp_path / "small.toy"
    onnx.save(small_model({}), source)
    assert convert(str(source), "-o", str(toy), "--to", "toyfw").exit_code == 0
    document = json.loads(toy.read_text())
    document["layers"][0]["kind"], document["layers"][2]["kind"] = "softmax", "tanh"
    toy.write_text(json.dumps(document))
    done = convert(str(toy), "-o", str(tmp_path / "back.onnx"))
    assert done.exit_code == 3, done.output
    assert "node 'mm': softmax: no toyfw import converter" in done.stderr
    assert "node 'leaky': tanh: no toyfw import converter" in done.stderr


@pytest.mark.usefixtures("toyfw_on_path")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["layers"][1].update(inputs=["nowhere"]),
            "node 'half' (scale): reads 'nowhere'",
        ),
        (lambda d: d["layers"][1].pop("attrs"), "node 'half' (scale): needs attribute 'factor'"),
        (lambda d: d["layers"][2].pop("outputs"), "malformed toyfw model: KeyError"),
        (lambda d: d["params"]["w"].update(shape=[5]), "a toyfw parameter cannot be read"),
    ],
)
def test_a_malformed_toy_file_exits_2_naming_the_layer(tmp_path, edit, message):
    source, toy = tmp_path / "small.onnx", tmp_path / "small.toy"
    onnx.save(small_model({}), source)
    assert convert(str(source), "-o", str(toy), "--to", "toyfw").exit_code == 0
    document = json.loads(toy.read_text())
    edit(document)
    toy.write_text(json.dumps(document))
    done = convert(str(toy), "-o", str(tmp_path / "back.onnx"))
    assert done.exit_code == 2, done.output
    assert message in done.stderr and "Traceback" not in done.output


def test_the_toy_frontend_imports_only_the_native_layer_of_its_framework():
    """The layer contract of unframe's own frameworks (.importlinter), kept by the template."""
    imported = []
    for path in (TOY_PACKAGE / "frontend").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.append(node.module or "")
            elif isinstance(node, ast.Import):
                imported.extend(alias.name for alias in node.names)
    toyfw = [module for module in imported if module.split(".")[0] == "toyfw"]
    assert "toyfw.native" in toyfw
    assert all(
        module in ("toyfw.native",) or module.startswith("toyfw.frontend") for module in toyfw
    )
