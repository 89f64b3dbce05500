"""Pairs through Core ML, checked against the source framework's own outputs (rtol 1e-4, atol 1e-5).

- Keras -> Core ML: the shared digits CNN (a public project's ``.keras``) and a Sequential built
  here; the package is read back through coremltools' reader and the frontend (Core ML itself
  runs only on macOS) and compared with Keras calling the model.
- Core ML -> PyTorch and Core ML -> Caffe2: a package written by coremltools' own ``ct.convert``
  from a small torch CNN; the written ``.pt2`` runs in torch and the Caffe2 net in Caffe2, and
  both are compared with the torch module the package came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from tests.helpers import SHARED_FIXTURES
from unframe.backends.coreml.native import coremltools, load_spec, quiet_stderr
from unframe.cli.main import cli
from unframe.converters import api
from unframe.converters.registry import framework_names, get_framework
from unframe.frontends.coreml.driver import load_coreml

RTOL, ATOL = 1e-4, 1e-5
DIGITS = SHARED_FIXTURES / "tensorflow" / "digits_cnn.keras"


def _needs(*names: str) -> None:
    for name in names:
        if name not in framework_names():
            pytest.skip(f"the {name} adapter is not registered")
        framework = get_framework(name)
        if not framework.is_installed():
            pytest.skip(f"{name} is not installed: {', '.join(framework.missing_modules())}")


def _only(outputs: dict[str, np.ndarray]) -> np.ndarray:
    (value,) = outputs.values()
    return value


def _run_package(path: Path, x: np.ndarray) -> np.ndarray:
    """The package in Core ML on macOS; elsewhere read back (coremltools' reader, our frontend)
    and run in onnxruntime, as ``validate`` does there."""
    if get_framework("coreml").runtime_unavailable() is None:
        return _only(get_framework("coreml").run(path, {"x": x}))
    model = load_coreml(path)
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString())
    (value,) = session.run(None, {model.graph.inputs[0].name: x})
    return np.asarray(value)


# -- Keras -> Core ML -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras() -> Any:
    _needs("tensorflow", "coreml")
    from unframe.frontends.tensorflow.quiet import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def _keras_to_coreml(keras: Any, source: Path, target: Path, batch: int) -> None:
    reference = keras.saving.load_model(source, compile=False)
    shape = (batch, *reference.inputs[0].shape[1:])
    x = np.random.default_rng(0).random(shape, np.float32)
    result = api.convert(source, target, "tensorflow", "coreml", validate=True)
    assert result.validation is not None and result.validation.ok, result.validation
    spec = load_spec(target)  # the package loads in coremltools
    assert spec.WhichOneof("Type") == "mlProgram"
    got = _run_package(target, x)
    expected = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.skipif(not DIGITS.is_file(), reason=f"the shared Keras fixture is not at {DIGITS}")
def test_keras_digits_cnn_file_to_coreml_matches_keras(keras: Any, tmp_path: Path) -> None:
    _keras_to_coreml(keras, DIGITS, tmp_path / "digits.mlpackage", batch=2)


def test_keras_sequential_to_coreml_through_the_cli_matches_keras(
    keras: Any, tmp_path: Path
) -> None:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 2)),
            keras.layers.Conv2D(4, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    norm = model.layers[2]
    norm.moving_mean.assign(np.linspace(-0.5, 0.5, 4).astype(np.float32))
    norm.moving_variance.assign(np.linspace(0.5, 2, 4).astype(np.float32))
    source, target = tmp_path / "seq.keras", tmp_path / "seq.mlpackage"
    model.save(source)
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(target), "--validate", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["from"] == "tensorflow" and payload["to"] == "coreml"
    assert payload["validation"]["ok"], payload
    x = np.random.default_rng(2).random((3, 12, 12, 2), np.float32)
    assert load_spec(target).WhichOneof("Type") == "mlProgram"
    got = _run_package(target, x)
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), rtol=RTOL, atol=ATOL)


# -- Core ML (written by ct.convert) -> PyTorch / Caffe2 ----------------------------------------


@pytest.fixture(scope="module")
def torch_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small CNN converted by coremltools' own PyTorch converter, its input and torch's output."""
    torch = pytest.importorskip("torch", reason="the package is converted from a PyTorch model")
    _needs("coreml")
    ct = coremltools()
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 4, 3, stride=2),
        torch.nn.Sigmoid(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 7),
        torch.nn.Softmax(-1),
    ).eval()
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
        module[1].running_var.uniform_(0.5, 2)
        example = torch.randn(2, 3, 16, 16)
        expected = module(example).numpy()
    with quiet_stderr():
        package = ct.convert(
            torch.jit.trace(module, example),
            inputs=[ct.TensorType(name="x", shape=tuple(example.shape))],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32,
        )
    path = tmp_path_factory.mktemp("ct") / "cnn.mlpackage"
    package.save(str(path))
    return path, example.numpy(), expected


@pytest.mark.parametrize(("target", "suffix"), [("pytorch", ".pt2"), ("caffe2", ".caffe2")])
def test_coremltools_package_to_framework_matches_torch(
    torch_package: tuple[Path, np.ndarray, np.ndarray], target: str, suffix: str, tmp_path: Path
) -> None:
    _needs(target)
    reason = get_framework(target).runtime_unavailable()
    if reason:
        pytest.skip(f"{target} cannot run here: {reason}")
    package, example, expected = torch_package
    written = tmp_path / f"cnn{suffix}"
    result = api.convert(package, written, "coreml", target)
    assert result.ok and written.exists()
    got = _only(get_framework(target).run(written, {"x": example}))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
