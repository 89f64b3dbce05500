"""``.keras`` files whose classes live in the user's code: refused through the CLI by name.

The message must name each custom class (read from the archive's config.json, nothing imported),
say how to get a convertible model, exit 3, write nothing and print no traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")

from click.testing import CliRunner, Result  # noqa: E402

from unframe.cli.main import cli  # noqa: E402
from unframe.converters.registry import framework_names  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.errors import ExitCode  # noqa: E402


@pytest.fixture(scope="module")
def keras() -> Any:
    import_tensorflow()
    import keras

    if "tensorflow" not in framework_names():
        pytest.skip("the tensorflow adapter (converters/adapters/tensorflow.py) is not registered")
    return keras


def _refused(source: Path, tmp_path: Path, *fragments: str) -> str:
    out = tmp_path / "out.onnx"
    result: Result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(out)])
    text = result.output
    assert result.exit_code == ExitCode.UNSUPPORTED, text
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    for fragment in (source.name, "model.export", "register_keras_serializable", *fragments):
        assert fragment in text, text
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    return text


def test_custom_layer_is_named_with_its_registration(keras: Any, tmp_path: Path) -> None:
    # Registered only while saving, as in the user's process; this process then lacks it, as
    # the CLI's always does.
    @keras.saving.register_keras_serializable(package="unframe_test")
    class Twice(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2

    try:
        model = keras.Sequential([keras.Input((3,)), Twice(name="doubler"), keras.layers.Dense(2)])
        model.save(tmp_path / "twice.keras")
    finally:
        del keras.saving.get_custom_objects()["unframe_test>Twice"]
    text = _refused(
        tmp_path / "twice.keras", tmp_path, "Twice", "'unframe_test>Twice'", "layer 'doubler'"
    )
    assert "Dense" not in text and "Sequential" not in text  # Keras' own classes are not custom


def test_subclassed_model_is_named(keras: Any, tmp_path: Path) -> None:
    class ScoreHead(keras.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x: Any) -> Any:
            return self.dense(x)

    model = ScoreHead()
    model(np.zeros((1, 3), np.float32))
    model.save(tmp_path / "head.keras")
    _refused(tmp_path / "head.keras", tmp_path, "ScoreHead (the model itself)")
