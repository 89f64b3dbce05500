"""A ``.tflite`` holding an op tf2onnx's TFLite path cannot convert is refused, never written.

The file is TFLiteConverter's own, from a ``tf.function`` using ``tf.math.igamma`` (no TFLite
builtin; written as a custom op with ``allow_custom_ops``), which tf2onnx leaves in the graph as
``TFL_Igamma``. The import must exit 3 listing the op and its node, and write nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from unframe.cli.main import cli  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.errors import ExitCode  # noqa: E402


def test_a_custom_op_tf2onnx_cannot_convert_exits_3_naming_op_and_node(tmp_path: Path) -> None:
    tf = import_tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
    def incomplete_gamma(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.math.igamma(x, x + 1.0) * 2.0}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [incomplete_gamma.get_concrete_function()]
    )
    converter.allow_custom_ops = True
    source = tmp_path / "igamma.tflite"
    source.write_bytes(converter.convert())
    out = tmp_path / "igamma.onnx"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(out)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "Traceback" not in result.output
    assert "cannot import" in result.output and source.name in result.output
    assert "TFL_Igamma x1" in result.output and "node 'Igamma'" in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
