"""ONNX load/save with external data, and atomic outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from unframe.shared_ir import io
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.onnx_wire import MappedTensor
from unframe.shared_ir.runner import run_reference

from helpers import as_ir, linear_model


def test_large_models_are_saved_with_external_data_and_load_lazily(tmp_path, monkeypatch):
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = as_ir(linear_model(weight))
    # Lower the threshold so a small model takes the path a model over 2 GB takes.
    monkeypatch.setattr(io, "EXTERNAL_DATA_THRESHOLD", 16)
    monkeypatch.setattr(io, "EXTERNAL_TENSOR_MIN_BYTES", 16)
    path = tmp_path / "big.onnx"
    io.save_onnx(model, path)
    side_file = tmp_path / "big.onnx.data"
    assert side_file.exists() and side_file.stat().st_size >= weight.nbytes
    proto = onnx.load(path, load_external_data=False)
    assert proto.graph.initializer[0].data_location == onnx.TensorProto.EXTERNAL

    loaded = io.load_onnx(path)
    tensor = loaded.graph.initializers["W"].const_value
    # A view of the side file's one mapping: not read until used.
    assert isinstance(tensor, MappedTensor) and tensor.path == side_file.resolve()
    x = np.ones((2, 3), np.float32)
    outputs = run_reference(loaded, {"x": x}).outputs
    np.testing.assert_allclose(outputs["y"], x @ weight + 1)


def test_small_models_stay_in_one_file(tmp_path):
    path = tmp_path / "small.onnx"
    io.save_onnx(as_ir(linear_model(np.eye(2))), path)
    assert not (tmp_path / "small.onnx.data").exists()


@pytest.mark.parametrize(
    "content, words",
    [(b"", "not a readable"), (b"<!DOCTYPE html><html>404</html>", "not a readable")],
)
def test_unreadable_files_raise_one_bad_input_error(tmp_path, content, words):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content + b"\xff" * 7)
    with pytest.raises(BadInputError, match=words) as info:
        io.load_onnx(path)
    assert str(path) in str(info.value)


def test_atomic_output_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.onnx"
    with pytest.raises(RuntimeError), io.atomic_output(target, force=False) as temporary:
        temporary.write_text("half written")
        raise RuntimeError("backend failed midway")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_never_clobbers_without_force(tmp_path):
    target = tmp_path / "out.onnx"
    target.write_text("precious")
    with pytest.raises(BadInputError, match="already exists"):
        with io.atomic_output(target, force=False) as temporary:
            temporary.write_text("new")
    assert target.read_text() == "precious"
    with io.atomic_output(target, force=True) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]


def test_atomic_output_moves_side_files_and_directories(tmp_path):
    target = tmp_path / "model.onnx"
    with io.atomic_output(target, force=False) as temporary:
        temporary.write_text("graph")
        (temporary.parent / "model.onnx.data").write_text("weights")
    assert (tmp_path / "model.onnx.data").read_text() == "weights"
    folder = tmp_path / "net"
    with io.atomic_output(folder, force=False, directory=True) as temporary:
        (temporary / "predict_net.pb").write_text("x")
    assert (folder / "predict_net.pb").exists()
