"""A legacy ``.h5`` only tf_keras can read: the tf_keras loader is forced, and named.

``ThresholdedReLU`` was removed in Keras 3, so Keras 3 refuses the file (``Unknown layer``) and the
frontend falls back to tf_keras. Oracle: the tf_keras model's own outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("tf_keras", reason="tf_keras (legacy .h5 files) is not installed")

from unframe.frontends.tensorflow import SOURCE_KEY, load_tensorflow  # noqa: E402
from unframe.frontends.tensorflow.quiet import import_tensorflow  # noqa: E402
from unframe.shared_ir.options import ConvertOptions  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_h5_keras_3_cannot_load_is_read_by_tf_keras_and_says_so(tmp_path: Path) -> None:
    import_tensorflow()
    import keras
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    legacy = tf_keras.Sequential(
        [
            tf_keras.Input((4,), name="features"),
            tf_keras.layers.Dense(3, name="dense"),
            tf_keras.layers.ThresholdedReLU(theta=0.2, name="scores"),
        ]
    )
    path = tmp_path / "legacy.h5"
    legacy.save(path)
    with pytest.raises(Exception, match="ThresholdedReLU"):  # Keras 3 itself cannot
        keras.saving.load_model(path, compile=False)
    model = load_tensorflow(path, ConvertOptions())
    assert model.metadata_props[SOURCE_KEY].startswith(f"tf_keras {tf_keras.__version__}")
    assert [v.name for v in model.graph.inputs] == ["features"]
    assert [v.name for v in model.graph.outputs] == ["scores"]
    x = np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32)
    expected = legacy(x).numpy()
    assert 0 < np.count_nonzero(expected) < expected.size  # the threshold cuts some, not all
    session = ort.InferenceSession(
        ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {"features": x})
    np.testing.assert_allclose(got, expected, RTOL, ATOL)
