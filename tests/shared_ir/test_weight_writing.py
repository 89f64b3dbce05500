"""Weights written in bounded contiguous chunks are the bytes onnx itself reads back."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import numpy_helper

from unframe.shared_ir.io import save_onnx
from unframe.shared_ir.weight_writing import write_array


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.int64])
@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
@pytest.mark.parametrize("copier", ["numpy", "torch"])
def test_write_array_writes_c_order_bytes(
    dtype: type, chunk_bytes: int, copier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The torch copy is taken only where torch is already imported; hide it for numpy's.
    if copier == "torch":
        pytest.importorskip("torch", reason="the torch copy needs torch")
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    rng = np.random.default_rng(1)
    original = (rng.standard_normal((37, 300)) * 10).astype(dtype)
    for view in (
        original.T,
        original[::2, 1::3],
        original[:, ::-1],
        original.reshape(37, 3, 100).transpose(2, 0, 1),
    ):
        buffer = io.BytesIO()
        write_array(view, buffer, chunk_bytes=chunk_bytes)
        expected = np.ascontiguousarray(view)
        assert buffer.getvalue() == expected.tobytes()


def test_transposed_initializers_saved_as_external_data_read_back_by_onnx(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    weights = {
        "w_float": rng.standard_normal((64, 48)).astype(np.float32).T,
        "w_bf16": rng.standard_normal((32, 40)).astype(ml_dtypes.bfloat16).T,
        "w_plain": rng.standard_normal((40, 32)).astype(np.float32),
    }
    graph = ir.Graph([], [], nodes=[], opset_imports={"": 17}, name="weights")
    for name, array in weights.items():
        value = ir.Value(name=name, const_value=ir.Tensor(array, name=name))
        value.type = ir.TensorType(value.const_value.dtype)
        value.shape = ir.Shape(array.shape)
        graph.register_initializer(value)
        graph.outputs.append(value)
    model = ir.Model(graph, ir_version=10)
    before = {name: value.const_value for name, value in graph.initializers.items()}
    path = tmp_path / "m.onnx"
    save_onnx(model, path, external_data=True)
    # The caller's model keeps its own tensors.
    assert {name: value.const_value for name, value in graph.initializers.items()} == before
    on_disk = onnx.load(str(path), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in on_disk.graph.initializer)
    proto = onnx.load(str(path), load_external_data=True)
    for tensor in proto.graph.initializer:
        read = numpy_helper.to_array(tensor)
        expected = weights[tensor.name]
        if expected.dtype == ml_dtypes.bfloat16:
            # onnx reads bfloat16 as float32 values (or its own bfloat16 type): compare values.
            np.testing.assert_array_equal(
                np.asarray(read, dtype=np.float32), expected.astype(np.float32)
            )
        else:
            np.testing.assert_array_equal(read, expected)
