"""The Python API: results carry what ran, paths, timings and per-output errors."""

from __future__ import annotations

import numpy as np
import pytest

import unframe
from unframe.converters.registry import detect_framework, framework_names, get_framework
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.runner import run_reference

from helpers import light_model_data, linear_model, tiny_model


def test_registry_lists_the_adapters_through_entry_points():
    assert framework_names()[0] == "onnx"
    assert get_framework("ONNX").name == "onnx"
    with pytest.raises(BadInputError, match="unknown framework"):
        get_framework("mxnet")


def test_detection_by_suffix(tmp_path):
    assert detect_framework(tmp_path / "a.onnx", for_writing=True).name == "onnx"
    with pytest.raises(BadInputError, match="cannot tell"):
        detect_framework(tmp_path / "a.unknown", for_writing=True)


def test_load_save_convert_validate_roundtrip(tmp_path, write_model):
    source = write_model(linear_model(np.arange(6, dtype=np.float32).reshape(3, 2)))
    model = unframe.load(source)
    assert [v.name for v in model.graph.inputs] == ["x"]
    saved = unframe.save(model, tmp_path / "copy.onnx")
    assert saved.exists()

    result = unframe.convert(source, tmp_path / "out.onnx", validate=True, inputs=["x=7,3"])
    assert result.ok and result.source == "onnx" and result.target == "onnx"
    assert set(result.steps) == {"import", "passes", "export", "validate"}
    assert result.validation is not None and result.validation.outputs[0].shape == [7, 2]

    validation = unframe.validate(source, tmp_path / "out.onnx")
    assert validation.ok and validation.rtol == 1e-4 and validation.atol == 1e-5

    trip = unframe.roundtrip(source, "onnx")
    assert trip.ok and trip.before["ops"] == trip.after["ops"] == {"Add": 1, "MatMul": 1}


def test_passes_fold_constants_and_drop_identities(tmp_path, write_model):
    source = write_model(tiny_model(("Identity", "Relu", "Identity")))
    result = unframe.convert(source, tmp_path / "out.onnx")
    ops = [node.op_type for node in unframe.load(result.output).graph]
    assert ops == ["Relu"]
    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    out = run_reference(unframe.load(result.output), {"x": x}).outputs
    np.testing.assert_array_equal(next(iter(out.values())), np.maximum(x, 0))


@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_light_models_match_their_stored_outputs_through_the_reference_runner(name):
    path, inputs, expected = light_model_data(name)
    outputs = run_reference(unframe.load(path), inputs).outputs
    for got, want in zip(outputs.values(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
