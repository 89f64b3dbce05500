"""TensorFlow bad inputs: one clear line each, exit 2 or 3, no code from the file ever run.

Files that would run code (a Lambda's bytecode, pickled weights) create a sentinel file when they
do; the tests check it never appears.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")

from unframe.frontends.tensorflow import load_tensorflow  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.errors import (  # noqa: E402
    BadInputError,
    ExitCode,
    UnframeError,
    UnsupportedError,
    UnsupportedOpsError,
)
from unframe.shared_ir.options import ConvertOptions  # noqa: E402


class Evil:
    """Unpickling this creates ``sentinel``: proof that arbitrary code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.sentinel), "w"))


@pytest.fixture(scope="module")
def tf() -> Any:
    return import_tensorflow()


@pytest.fixture(scope="module")
def keras(tf: Any) -> Any:
    import keras

    return keras


@pytest.fixture(scope="module")
def saved_model(tf: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    class Scale(tf.Module):
        def __init__(self) -> None:
            self.factor = tf.Variable(np.arange(4096, dtype=np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4096], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return {"y": x * self.factor}

    path = tmp_path_factory.mktemp("saved") / "scale"
    module = Scale()
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return path


def _fails(
    path: Path, kind: type[UnframeError], *fragments: str, options: ConvertOptions | None = None
) -> UnframeError:
    with pytest.raises(kind) as caught:
        load_tensorflow(path, options or ConvertOptions())
    text = str(caught.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    assert caught.value.exit_code in (ExitCode.BAD_INPUT, ExitCode.UNSUPPORTED)
    return caught.value


def test_directory_that_is_not_a_saved_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    _fails(tmp_path, BadInputError, "not a SavedModel", "saved_model.pb")


def test_missing_signature_lists_the_ones_there(saved_model: Path) -> None:
    options = ConvertOptions(extra={"signature": "predict"})
    _fails(saved_model, BadInputError, "no signature 'predict'", "serving_default", options=options)


def test_truncated_variables_data(saved_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(saved_model, broken)
    data = next((broken / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:1000])
    _fails(broken, BadInputError, "cannot load the SavedModel")


def test_pb_that_is_not_a_graph_def(tmp_path: Path) -> None:
    path = tmp_path / "model.pb"
    path.write_bytes(b"\xff\xfe not a protobuf at all \x00\x01" * 8)
    _fails(path, BadInputError, "GraphDef")


def test_lambda_layer_bytecode_is_refused_unrun(keras: Any, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    model = keras.Sequential(
        [
            keras.Input((3,)),
            # the path is a default, not a closure: Keras serializes str defaults
            keras.layers.Lambda(lambda t, s=str(sentinel): (open(s, "w").close(), t * 2)[1]),
        ]
    )
    sentinel.unlink()  # building the model ran it once, here, on purpose
    model.save(tmp_path / "lambda.keras")
    error = _fails(tmp_path / "lambda.keras", UnsupportedError, "Lambda", "bytecode", "rebuild")
    assert error.exit_code == ExitCode.UNSUPPORTED
    assert not sentinel.exists()


def test_keras_weights_holding_pickles_are_never_unpickled(keras: Any, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(tmp_path / "good.keras")
    weights = io.BytesIO()
    np.savez(weights, dense=np.array([Evil(sentinel)], dtype=object))
    with zipfile.ZipFile(tmp_path / "good.keras") as good:
        config = good.read("config.json")
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as evil:
        evil.writestr("config.json", config)
        evil.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        evil.writestr("model.weights.npz", weights.getvalue())
    _fails(tmp_path / "evil.keras", BadInputError, "pickled Python objects", "never unpickles")
    assert not sentinel.exists()


def test_keras_file_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    _fails(path, BadInputError, "Keras 3 archive")


def test_every_unconverted_tf_op_is_listed_with_its_node(tf: Any, tmp_path: Path) -> None:
    """tf2onnx has no handler for Digamma or Igamma: both nodes named, exit 3."""

    class Special(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            positive = tf.exp(x) + 1.0
            return {
                "a": tf.math.digamma(positive, name="dig"),
                "b": tf.math.igamma(positive, positive, name="igam"),
            }

    module = Special()
    tf.saved_model.save(module, str(tmp_path / "special"), signatures=module.__call__)
    error = _fails(tmp_path / "special", UnsupportedOpsError, "Digamma x1", "Igamma x1")
    assert isinstance(error, UnsupportedOpsError) and error.direction == "import"
    assert sorted(op.op_type for op in error.ops) == ["Digamma", "Igamma"]
    assert all(op.node for op in error.ops)


def test_cli_refuses_lambda_and_writes_nothing(keras: Any, tmp_path: Path) -> None:
    from unframe.converters import api
    from unframe.converters.registry import framework_names

    if "tensorflow" not in framework_names():
        pytest.skip("the tensorflow adapter (converters/adapters/tensorflow.py) is not registered")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t + 1)])
    model.save(tmp_path / "lambda.keras")
    out = tmp_path / "out.onnx"
    with pytest.raises(UnsupportedError):
        api.convert(tmp_path / "lambda.keras", out, "tensorflow", "onnx")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["lambda.keras"]
