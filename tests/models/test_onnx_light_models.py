"""The ``light_*.onnx`` models shipped inside the onnx package, against their stored outputs.

Inputs are made exactly as onnx's own backend test runner makes them
(``Runner.generate_dummy_data``), and the tolerances are the ones onnx declares for each model,
so the stored ``light_*_output_0.pb`` files are an independent oracle. Each model runs through
onnxruntime, then through the PyTorch backend (``to_torch``); a model the backend refuses must be
listed in ``expected_unsupported.py`` with exactly the op types refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from models.expected_unsupported import convert_or_expect_refusal, misspelt_lines, unknown_models
from onnx import numpy_helper
from onnx.backend.test.runner import Runner

from unframe.converters.registry import framework_names
from unframe.shared_ir.runner import run_reference

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
#: Tolerances onnx declares for these models (``onnx.backend.test.case.model``).
_TOLERANCES: dict[str, tuple[float, float]] = {"densenet121": (2e-3, 1e-7)}
_DEFAULT_TOLERANCE = (1e-3, 1e-7)
MODELS = sorted(path.stem.removeprefix("light_") for path in LIGHT_DIR.glob("light_*.onnx"))


def _case(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[np.ndarray]]:
    proto = onnx.load(LIGHT_DIR / f"light_{name}.onnx")
    initializers = {tensor.name for tensor in proto.graph.initializer}
    feeds = {
        value.name: Runner.generate_dummy_data(value, seed=0, name=name, random=False)
        for value in proto.graph.input
        if value.name not in initializers
    }
    expected = []
    for index in range(len(proto.graph.output)):
        tensor = onnx.TensorProto()
        tensor.ParseFromString((LIGHT_DIR / f"light_{name}_output_{index}.pb").read_bytes())
        expected.append(numpy_helper.to_array(tensor))
    return proto, feeds, expected


def _assert_close(name: str, actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    rtol, atol = _TOLERANCES.get(name, _DEFAULT_TOLERANCE)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_the_light_models_are_there() -> None:
    assert len(MODELS) >= 9, f"onnx ships fewer light models than expected: {MODELS}"


def test_expected_unsupported_names_real_models() -> None:
    assert misspelt_lines(framework_names()) == []
    assert unknown_models("onnx_light", MODELS) == []


@pytest.mark.parametrize("name", MODELS)
def test_light_model_onnxruntime(name: str) -> None:
    proto, feeds, expected = _case(name)
    result = run_reference(ir.from_proto(proto), feeds)
    assert result.engine == "onnxruntime", result.fallback_reason
    _assert_close(name, list(result.outputs.values()), expected)


@pytest.mark.parametrize("name", MODELS)
def test_light_model_pytorch_backend(name: str) -> None:
    torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")
    from unframe.backends.pytorch import to_torch

    proto, feeds, expected = _case(name)
    model = ir.from_proto(proto)
    module = convert_or_expect_refusal(f"onnx_light/{name}", "pytorch", lambda: to_torch(model))
    if module is None:
        return  # refused exactly as the table expects
    graph_inputs = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    with torch.no_grad():
        result = module(*(torch.from_numpy(feeds[name_]) for name_ in graph_inputs))
    outputs = result if isinstance(result, tuple | list) else (result,)
    _assert_close(name, [t.numpy() for t in outputs], expected)
