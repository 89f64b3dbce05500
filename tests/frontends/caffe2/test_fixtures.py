"""Third-party NetDefs: import, run in onnxruntime and the executor, export back and run again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model, read_model
from unframe.backends.caffe2.native.weights import random_init_net
from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.runner import run_reference

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "caffe2"
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"third-party Caffe2 fixtures not found at {FIXTURES}"
)


def _round_trip(
    c2: Caffe2Model, name: str, x: np.ndarray, options: ConvertOptions | None = None
) -> None:
    imported = import_caffe2(c2, options)
    reference = run_reference(imported, {name: x})
    assert reference.engine == "onnxruntime", reference.fallback_reason
    executed = run_net(c2.predict_net, c2.init_net, {name: x})
    assert list(executed) == list(reference.outputs)
    for blob, want in executed.items():
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(reference.outputs[blob], want, rtol=1e-4, atol=1e-5 * scale)
    nets = export_model(imported)
    assert list(nets.predict_net.external_output) == list(executed)
    again = run_net(nets.predict_net, nets.init_net, {name: x})
    for blob, want in executed.items():
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(again[blob], want, rtol=1e-4, atol=1e-5 * scale)


def test_lenet_written_by_caffe2s_onnx_backend() -> None:
    c2 = read_model(FIXTURES / "lenet")
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    _round_trip(c2, "1", x, ConvertOptions(inputs={"1": InputSpec("1", (1, 1, 28, 28))}))


def test_mtcnn_pnet_with_legacy_pooling_and_placeholder_input() -> None:
    c2 = read_model(FIXTURES / "mtcnn_pnet")
    x = np.random.default_rng(0).standard_normal((1, 3, 24, 30)).astype(np.float32)
    options = ConvertOptions(inputs={"data": InputSpec("data", (1, 3, 24, 30))})
    imported = import_caffe2(c2, options)
    assert [v.name for v in imported.graph.inputs] == ["data"]
    _round_trip(c2, "data", x, options)


@pytest.mark.parametrize("net", ["bvlc_alexnet", "resnet50", "vgg19", "zfnet512"])
def test_model_zoo_net_with_random_weights(net: str) -> None:
    c2 = read_model(FIXTURES / "zoo" / net, allow_missing_init=True)
    c2.init_net = random_init_net(c2.predict_net, c2.value_info, seed=0)
    ((name, (_, dims)),) = c2.value_info.items()
    imported = import_caffe2(c2)
    assert [v.name for v in imported.graph.inputs] == [name]  # the zoo's queue blobs are unread
    x = np.random.default_rng(1).standard_normal(dims).astype(np.float32)
    _round_trip(c2, name, x)
