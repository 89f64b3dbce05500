"""The CLI's TensorFlow source options: ``--signature`` (SavedModel) and ``--output-node`` with
``--input`` (frozen GraphDef), checked against TensorFlow's own outputs on the same arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.cli.main import cli  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def tf() -> Any:
    return import_tensorflow()


def _run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_signature_option_picks_the_named_signature(tf: Any, tmp_path: Path) -> None:
    class TwoWays(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def double(self, x: Any) -> dict[str, Any]:
            return {"doubled": x * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def negate(self, x: Any) -> dict[str, Any]:
            return {"negated": -x}

    module = TwoWays()
    signatures = {"serving_default": module.double, "negate": module.negate}
    tf.saved_model.save(module, str(tmp_path / "two"), signatures=signatures)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = tmp_path / "negate.onnx"
    args = ["convert", str(tmp_path / "two"), "-o", str(out), "--signature", "negate"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert [o.name for o in onnx.load(out).graph.output] == ["negated"]
    expected = module.negate(tf.constant(x))["negated"].numpy()
    np.testing.assert_allclose(_run_onnx(out, {"x": x})["negated"], expected, RTOL, ATOL)

    result = CliRunner().invoke(
        cli,
        ["convert", str(tmp_path / "two"), "-o", str(tmp_path / "no.onnx"), "--signature", "nope"],
    )
    assert result.exit_code == 2
    assert "no signature 'nope'" in result.stderr and "--signature NAME" in result.stderr
    assert not (tmp_path / "no.onnx").exists()


def test_output_node_option_names_a_frozen_graphs_outputs(tf: Any, tmp_path: Path) -> None:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    scale = tf.Variable([2.0, -1.0, 0.5])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def score(features: Any) -> tuple[Any, Any]:
        scores = tf.nn.relu(features * scale, name="scores")
        return scores, tf.reduce_sum(scores, axis=1, name="total")

    frozen = convert_variables_to_constants_v2(score.get_concrete_function())
    pb = tmp_path / "frozen.pb"
    pb.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    out = tmp_path / "total.onnx"
    args = ["convert", str(pb), "--from", "tensorflow", "-o", str(out)]
    result = CliRunner().invoke(
        cli,
        [
            *args,
            *("--input", "features=2,3", "--output-node", "total", "--output-node", "scores"),
            "--validate",
        ],
    )
    assert result.exit_code == 0, result.output
    # the frozen graph itself ran in TensorFlow, fetching the named outputs
    assert "the source run by tensorflow's runtime" in result.stdout
    model = onnx.load(out)
    assert [o.name for o in model.graph.output] == ["total", "scores"]
    x = np.array([[1.0, 2.0, -3.0], [-1.0, 0.0, 4.0]], np.float32)
    scores, total = (t.numpy() for t in score(tf.constant(x)))
    got = _run_onnx(out, {"features": x})
    np.testing.assert_allclose(got["total"], total, RTOL, ATOL)
    np.testing.assert_allclose(got["scores"], scores, RTOL, ATOL)

    result = CliRunner().invoke(
        cli, [*args[:-1], str(tmp_path / "bad.onnx"), "--output-node", "missing"]
    )
    assert result.exit_code == 2
    assert "no node 'missing'" in result.stderr
