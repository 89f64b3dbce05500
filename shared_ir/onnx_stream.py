"""Writing an ``.onnx`` whose weights sit inside it without copying them on the way.

``ir.save`` of such a model copies every weight into the ``TensorProto`` it builds, protobuf
copies the whole message again into the bytes it serializes, and only then is anything written:
twice the weights in memory, and two copies of them in the time of every ONNX -> ONNX conversion
(issue #15). Here the model is serialized with each large initializer's bytes left out, and the
file is written field by field, each of those initializers' bytes straight from its own array (a
view of the source file where the weights were read mapped, ``onnx_wire``): the counterpart of
``onnx_wire.load_mapped``. The bytes are those ``ir.save`` writes (protobuf writes a message's
fields in field-number order, and only lengths change when ``raw_data`` is filled in).

Anything unexpected (an initializer of an unusual kind, a serialized message not laid out as
expected) makes :func:`save_streamed` return False before the file is opened; ``ir.save`` then
writes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from unframe.shared_ir.protowire import LENGTH_DELIMITED, WireError, field, key, varint

_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number

#: Below this many bytes an initializer is serialized by protobuf as usual (a copy costs nothing).
STREAMED_TENSOR_MIN_BYTES = 64 * 1024

Piece = bytes | memoryview


class _Unfilled(ir.Tensor):
    """A large initializer while the model is serialized: its name, type and shape, no bytes."""

    def tobytes(self) -> bytes:
        return b""


def _streamable(tensor: ir.TensorProtocol | None) -> np.ndarray | None:
    """The array whose memory holds exactly ``tensor.tobytes()``, where there is one."""
    if not isinstance(tensor, ir.Tensor) or type(tensor).tobytes is not ir.Tensor.tobytes:
        return None
    array = tensor.raw
    if not isinstance(array, np.ndarray) or array.nbytes < STREAMED_TENSOR_MIN_BYTES:
        return None
    try:
        # Strings are not raw data; sub-byte types are packed by tobytes.
        if tensor.dtype == ir.DataType.STRING or tensor.dtype.bitwidth < 8:
            return None
        if array.dtype != tensor.dtype.numpy() or not array.flags.c_contiguous:
            return None
    except TypeError:  # a type without a width or a numpy dtype (UNDEFINED): ir.save's to judge
        return None
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder != "little"):
        return None  # tobytes writes little-endian
    return array


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    fields = []
    position = start
    while position < end:
        number, wire_type, value_start, value_end = field(data, position, end)
        fields.append((number, wire_type, position, value_start, value_end))
        position = value_end
    return fields


def _filled_tensor(data: bytes, start: int, end: int, array: np.ndarray) -> list[Piece]:
    """The TensorProto at ``data[start:end]`` (its ``raw_data`` empty) with ``array``'s bytes."""
    pieces: list[Piece] = []
    filled = False
    for number, wire_type, field_start, value_start, value_end in _fields(data, start, end):
        if number == _RAW_DATA:
            if filled or wire_type != LENGTH_DELIMITED or value_end != value_start:
                raise WireError("raw_data not as serialized from an unfilled tensor")
            pieces.append(key(_RAW_DATA, LENGTH_DELIMITED) + varint(array.nbytes))
            # As bytes: the buffer protocol has no format for ml_dtypes' types (bfloat16, float8).
            pieces.append(array.reshape(-1).view(np.uint8).data)
            filled = True
        else:
            pieces.append(data[field_start:value_end])
    if not filled:
        raise WireError("no raw_data field")
    return pieces


def _length_delimited(number: int, pieces: list[Piece]) -> list[Piece]:
    return [key(number, LENGTH_DELIMITED) + varint(sum(len(p) for p in pieces)), *pieces]


def _pieces(data: bytes, arrays: list[np.ndarray | None]) -> list[Piece]:
    """``data`` (a serialized model) with the i-th initializer filled from ``arrays[i]``."""
    pieces: list[Piece] = []
    graphs = 0
    for number, wire_type, field_start, value_start, value_end in _fields(data, 0, len(data)):
        if number != _GRAPH or wire_type != LENGTH_DELIMITED:
            pieces.append(data[field_start:value_end])
            continue
        graphs += 1
        graph: list[Piece] = []
        index = 0
        for inner, inner_type, inner_start, tensor_start, tensor_end in _fields(
            data, value_start, value_end
        ):
            if inner != _INITIALIZER or inner_type != LENGTH_DELIMITED:
                graph.append(data[inner_start:tensor_end])
                continue
            if index >= len(arrays):
                raise WireError("more initializers than the graph has")
            array = arrays[index]
            index += 1
            if array is None:
                graph.append(data[inner_start:tensor_end])
            else:
                tensor = _filled_tensor(data, tensor_start, tensor_end, array)
                graph.extend(_length_delimited(_INITIALIZER, tensor))
        if index != len(arrays):
            raise WireError("fewer initializers than the graph has")
        pieces.extend(_length_delimited(_GRAPH, graph))
    if graphs != 1:
        raise WireError("not one graph")
    return pieces


def save_streamed(model: ir.Model, path: Path) -> bool:
    """Writes ``model`` to ``path`` in protobuf as ``ir.save`` would; False where it cannot.

    The main graph's large in-memory initializers are written from their arrays; nothing is
    written where this returns False. The model is left as it was, except that each initializer
    tensor takes its value's name, as ``ir.save`` does.
    """
    suffix_format = onnx.serialization.registry.get_format_from_file_extension(path.suffix)
    if suffix_format not in (None, "protobuf"):
        return False
    originals: list[tuple[ir.Value, ir.TensorProtocol]] = []
    arrays: list[np.ndarray | None] = []
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if tensor is None:
            continue  # ir.serde leaves it out
        tensor.name = value.name
        array = _streamable(tensor)
        arrays.append(array)
        if array is not None:
            originals.append((value, tensor))
            value.const_value = _Unfilled(
                array,
                dtype=tensor.dtype,
                name=value.name,
                doc_string=tensor.doc_string,
                metadata_props=dict(tensor.metadata_props),
            )
    if not originals:
        return False
    try:
        data = ir.serde.serialize_model(model).SerializeToString()
    finally:
        for value, tensor in originals:
            value.const_value = tensor
    try:
        pieces = _pieces(data, arrays)
    except WireError:
        return False
    with open(path, "wb") as file:
        for piece in pieces:
            file.write(piece)
    return True
