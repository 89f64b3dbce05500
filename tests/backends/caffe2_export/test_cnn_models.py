"""PyTorch CNNs exported to ONNX by torch, then to Caffe2: the executor must match torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cnn_models import MobileNetish, ResNetish, UNetish  # noqa: E402

from unframe.backends.caffe2.native.executor import run_net  # noqa: E402
from unframe.converters.adapters.caffe2 import Caffe2Framework  # noqa: E402
from unframe.converters.framework import ConvertOptions  # noqa: E402


@pytest.mark.parametrize("model_class", [ResNetish, MobileNetish, UNetish])
def test_cnn_matches_torch(model_class: type, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = model_class().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = module(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
    ir_model = program.model
    framework = Caffe2Framework()
    out = tmp_path / "model.caffe2"
    out.mkdir()
    framework.save(ir_model, out, ConvertOptions())
    assert sorted(p.name for p in out.iterdir()) == [
        "init_net.pb",
        "predict_net.pb",
        "value_info.json",
    ]
    got = framework.run(out, {ir_model.graph.inputs[0].name: x.numpy()})
    (result,) = got.values()
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-5)
    types = {op.type for op in framework_nets(out).op}
    assert types <= _CAFFE2_OPS, types - _CAFFE2_OPS
    # And back: the Caffe2 frontend reads what the backend wrote; onnxruntime agrees with torch.
    from unframe.shared_ir.runner import run_reference

    reloaded = framework.load(out, ConvertOptions())
    (again,) = run_reference(reloaded, {ir_model.graph.inputs[0].name: x.numpy()}).outputs.values()
    np.testing.assert_allclose(again, want, rtol=1e-4, atol=1e-5)


def framework_nets(path: Path):  # type: ignore[no-untyped-def]
    from unframe.backends.caffe2.native.netdef import read_model

    return read_model(path).predict_net


# Operators of Caffe2's own library that these models may use.
_CAFFE2_OPS = {
    "Conv", "ConvTranspose", "SpatialBN", "Relu", "MaxPool", "AveragePool", "FC", "FCTransposed",
    "Add", "Mul", "Sigmoid", "HardSigmoid", "Clip", "ReduceMean", "Reshape", "Concat",
    "ResizeNearest", "Copy", "Flatten", "Swish", "Gather",
}  # fmt: skip


def test_run_net_directly_on_exported_nets() -> None:
    from unframe.backends.caffe2.driver import export_model

    torch.manual_seed(1)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(12, 4)
    ).eval()
    x = torch.randn(2, 2, 4, 4)
    with torch.no_grad():
        want = module(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir_model = torch.onnx.export(module, (x,), dynamo=True, verbose=False).model
    nets = export_model(ir_model)
    (result,) = run_net(
        nets.predict_net, nets.init_net, {ir_model.graph.inputs[0].name: x.numpy()}
    ).values()
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-5)
