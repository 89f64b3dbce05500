"""The streamed ``.onnx`` writer writes the bytes protobuf's own serializer writes.

The oracle is onnx's serializer (``onnx.save_model`` of ``ir.serde.serialize_model``, what
``ir.save`` writes), byte for byte, and onnxruntime running the written file against numpy.
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from unframe.shared_ir import io
from unframe.shared_ir.onnx_stream import STREAMED_TENSOR_MIN_BYTES, save_streamed

_RNG = np.random.default_rng(0)


def _protobuf_bytes(model: ir.Model, tmp_path: Path) -> bytes:
    reference = tmp_path / "reference.onnx"
    onnx.save_model(ir.serde.serialize_model(model), reference)
    return reference.read_bytes()


def _initializer(graph: ir.Graph, name: str, array: np.ndarray, **kwargs: object) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.Tensor(array, name=name, **kwargs))  # type: ignore[arg-type]
    value.type = ir.TensorType(value.const_value.dtype)  # type: ignore[union-attr]
    value.shape = ir.Shape(array.shape)
    graph.register_initializer(value)
    return value


def _rich_model() -> tuple[ir.Model, dict[str, np.ndarray]]:
    """MatMul chain over large weights of several types, small ones, and odd cases around them."""
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([2, 128]))
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": 17}, name="g")
    arrays = {
        "w": _RNG.standard_normal((128, 256)).astype(np.float32),
        "w_half": _RNG.standard_normal((256, 256)).astype(np.float16),
        "w_bf16": _RNG.standard_normal((256, 128)).astype(ml_dtypes.bfloat16),
        "table": _RNG.integers(-(2**40), 2**40, size=(128, 128), dtype=np.int64),
        "mask": _RNG.integers(0, 2, size=(300, 300)).astype(bool),
        "bias": np.arange(128, dtype=np.float32),  # small: serialized by protobuf as usual
        "transposed": np.ascontiguousarray(_RNG.standard_normal((128, 128)).astype(np.float32)).T,
    }
    values = {name: _initializer(graph, name, a) for name, a in arrays.items() if name != "w"}
    values["w"] = _initializer(
        graph, "w", arrays["w"], doc_string="first layer", metadata_props={"source": "test"}
    )
    # An initializer that is also a graph input (a default the caller may override).
    graph.inputs.append(values["bias"])
    h = ir.node("MatMul", [x, values["w"]], name="mm0").outputs[0]
    graph.append(h.producer())  # type: ignore[arg-type]
    half = ir.node("Cast", [h], attributes={"to": ir.DataType.FLOAT16}).outputs[0]
    graph.append(half.producer())  # type: ignore[arg-type]
    y = ir.node("MatMul", [half, values["w_half"]]).outputs[0]
    graph.append(y.producer())  # type: ignore[arg-type]
    y.name = "y"
    for value, dtype in (
        (h, ir.DataType.FLOAT),
        (half, ir.DataType.FLOAT16),
        (y, ir.DataType.FLOAT16),
    ):
        value.type, value.shape = ir.TensorType(dtype), ir.Shape([2, 256])
    graph.outputs.append(y)
    model = ir.Model(graph, ir_version=10, producer_name="test", doc_string="a model")
    model.metadata_props["k"] = "v"
    return model, arrays


def test_rich_model_is_written_as_protobuf_writes_it(tmp_path: Path) -> None:
    model, arrays = _rich_model()
    originals = {name: value.const_value for name, value in model.graph.initializers.items()}
    path = tmp_path / "streamed.onnx"
    assert save_streamed(model, path)
    assert path.read_bytes() == _protobuf_bytes(model, tmp_path)
    # The model is left as it was: the same tensor objects.
    assert {n: v.const_value for n, v in model.graph.initializers.items()} == originals
    back = onnx.load(path)
    for tensor in back.graph.initializer:
        expected = arrays[tensor.name]
        assert onnx.numpy_helper.to_array(tensor).tobytes() == expected.tobytes(), tensor.name


def test_weights_read_mapped_are_written_from_the_mapping(tmp_path: Path) -> None:
    model, _ = _rich_model()
    source = tmp_path / "source.onnx"
    onnx.save_model(ir.serde.serialize_model(model), source)
    loaded = io.load_onnx(source)
    assert type(loaded.graph.initializers["w"].const_value).__name__ == "MappedTensor"
    copy = tmp_path / "copy.onnx"
    assert save_streamed(loaded, copy)
    assert copy.read_bytes() == source.read_bytes()


def test_written_model_runs_as_numpy_computes(tmp_path: Path) -> None:
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([3, 256]))
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": 17}, name="mlp")
    weight = _RNG.standard_normal((256, 256)).astype(np.float32) / 16
    w = _initializer(graph, "w", weight)
    matmul = ir.node("MatMul", [x, w])
    relu = ir.node("Relu", [matmul.outputs[0]])
    graph.extend([matmul, relu])
    relu.outputs[0].name = "y"
    for value in (matmul.outputs[0], relu.outputs[0]):
        value.type, value.shape = ir.TensorType(ir.DataType.FLOAT), ir.Shape([3, 256])
    graph.outputs.append(relu.outputs[0])
    path = tmp_path / "mlp.onnx"
    io.save_onnx(ir.Model(graph, ir_version=10), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    feed = _RNG.standard_normal((3, 256)).astype(np.float32)
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": feed}
    )
    np.testing.assert_allclose(got, np.maximum(feed @ weight, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".json", ".textproto"])
def test_text_formats_are_left_to_ir_save(tmp_path: Path, suffix: str) -> None:
    model, _ = _rich_model()
    path = tmp_path / f"model{suffix}"
    assert not save_streamed(model, path)
    assert not path.exists()


def test_model_without_large_weights_is_left_to_ir_save(tmp_path: Path) -> None:
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([4]))
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": 17})
    small = np.ones(STREAMED_TENSOR_MIN_BYTES // 4 - 1, dtype=np.float32)
    _initializer(graph, "small", small)
    path = tmp_path / "small.onnx"
    assert not save_streamed(ir.Model(graph, ir_version=10), path)
    assert not path.exists()
