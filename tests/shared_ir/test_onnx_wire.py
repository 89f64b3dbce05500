"""Weights inside an ``.onnx`` are read as views of the file, not as copies inside a protobuf."""

from __future__ import annotations

import mmap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from unframe.shared_ir import io
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.onnx_wire import MAPPED_TENSOR_MIN_BYTES, MappedTensor
from unframe.shared_ir.opset import convert_opset
from unframe.shared_ir.runner import run_reference

_RNG = np.random.default_rng(7)
#: Arrays of each dtype family raw_data holds, big enough to be mapped, plus a small one.
_WEIGHTS = {
    "w": _RNG.standard_normal((64, 64)).astype(np.float32),
    "b": _RNG.standard_normal(64).astype(np.float32),  # 256 bytes: stays in the message
    "half": _RNG.standard_normal(2048).astype(np.float16),
    "double": _RNG.standard_normal(300).astype(np.float64),
    "index": _RNG.integers(-9, 9, 1000).astype(np.int64),
    "flags": _RNG.integers(0, 2, 4096).astype(np.bool_),
}


def _write_model(path, opset: int = 17) -> None:
    """y = x @ w + b, with the other initializers present but unused."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 64])],
        [numpy_helper.from_array(array, name) for name, array in _WEIGHTS.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)


def _backed_by_mmap(array: np.ndarray) -> bool:
    base: object = array
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return isinstance(base, mmap.mmap)


def test_large_initializers_view_the_file_and_keep_their_values(tmp_path):
    path = tmp_path / "m.onnx"
    _write_model(path)
    model = io.load_onnx(path)
    for name, expected in _WEIGHTS.items():
        tensor = model.graph.initializers[name].const_value
        mapped = expected.nbytes >= MAPPED_TENSOR_MIN_BYTES
        assert isinstance(tensor, MappedTensor) == mapped, name
        array = tensor.numpy()
        assert array.dtype == expected.dtype and array.shape == expected.shape
        np.testing.assert_array_equal(array, expected)
        if mapped:
            assert _backed_by_mmap(array)
            assert not array.flags.writeable  # the IR's weights are not to be written through


def test_mapped_model_runs_saves_and_converts_like_the_original(tmp_path):
    path = tmp_path / "m.onnx"
    _write_model(path, opset=13)
    model = io.load_onnx(path)
    x = _RNG.standard_normal((3, 64)).astype(np.float32)
    expected = x @ _WEIGHTS["w"] + _WEIGHTS["b"]
    np.testing.assert_allclose(run_reference(model, {"x": x}).outputs["y"], expected, rtol=1e-5)

    # Saved elsewhere, the weights are written out in full (no reference back to the source).
    copy = tmp_path / "copy.onnx"
    io.save_onnx(model, copy)
    path.unlink()
    reread = onnx.load(copy)
    for tensor in reread.graph.initializer:
        assert tensor.data_location == TensorProto.DEFAULT
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), _WEIGHTS[tensor.name])

    upgraded = convert_opset(io.load_onnx(copy), 17)
    np.testing.assert_allclose(run_reference(upgraded, {"x": x}).outputs["y"], expected, rtol=1e-5)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_file_still_gets_the_one_line_error(tmp_path, cut):
    path = tmp_path / "m.onnx"
    _write_model(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(BadInputError, match="not a readable ONNX model"):
        io.load_onnx(path)


def test_pytorch_parameters_share_the_file_pages_copy_on_write(tmp_path):
    torch = pytest.importorskip("torch", reason="the PyTorch backend needs torch")
    from unframe.backends.pytorch import to_torch

    path = tmp_path / "m.onnx"
    _write_model(path)
    before = path.read_bytes()
    model = io.load_onnx(path)
    module = to_torch(model)
    tensors = list(module.parameters()) + list(module.buffers())
    # raw_data sits at arbitrary byte offsets; kernels need dtype-aligned data (torch#191238).
    assert all(t.data_ptr() % t.element_size() == 0 for t in tensors if t.numel())
    weights = {tuple(t.shape): t for t in tensors}
    weight = weights[(64, 64)]
    np.testing.assert_array_equal(weight.detach().numpy(), _WEIGHTS["w"])
    with torch.no_grad():
        weight.add_(1.0)  # training writes to parameters: private pages only
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), _WEIGHTS["w"])
    assert path.read_bytes() == before
    x = _RNG.standard_normal((2, 64)).astype(np.float32)
    got = module(torch.from_numpy(x))
    got = got[0] if isinstance(got, tuple | list) else got
    np.testing.assert_allclose(
        got.detach().numpy(), x @ (_WEIGHTS["w"] + 1.0) + _WEIGHTS["b"], rtol=1e-4, atol=1e-5
    )
