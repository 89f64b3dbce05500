"""Reading an ``.onnx`` file whose weights sit inside it without holding them twice.

``onnx.load`` reads the file into bytes and protobuf then copies every ``raw_data`` into the
parsed message, so a model costs about twice its weights before any converter copies them again.
Here the file is memory-mapped read-only and walked at the wire level just far enough to find each
initializer's ``raw_data``: protobuf parses the file minus those bytes, and each initializer
becomes a :class:`MappedTensor`, a read-only numpy view of the mapping that also says where in the
file it lies, so that a consumer wanting writable weights (PyTorch parameters) can map its own
copy-on-write view of those bytes instead of copying them. Pages come in from the file only when a
tensor is read.

Anything unexpected on the way (a malformed field, a duplicated graph, an unusual dtype) makes
:func:`load_mapped` return ``None`` so the caller falls back to the plain protobuf load, which
also produces the error message for a corrupt file. A file that is not a regular file, or a model
that parses but breaks ONNX's rules (``onnx_checks``), raises ``BadInputError`` at once.
"""

from __future__ import annotations

import errno
import math
import mmap
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import onnx
import onnx_ir as ir

from unframe.shared_ir.errors import BadInputError, unexpected_error
from unframe.shared_ir.onnx_checks import check_loaded, open_regular
from unframe.shared_ir.protowire import (
    LENGTH_DELIMITED,
    VARINT,
    WireError,
    field,
    key,
    read_varint,
    varint,
)

_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_DATA_TYPE = onnx.TensorProto.DESCRIPTOR.fields_by_name["data_type"].number
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number
_DATA_LOCATION = onnx.TensorProto.DESCRIPTOR.fields_by_name["data_location"].number

#: Below this many bytes a tensor stays inside the parsed message (shapes, scalars, biases).
MAPPED_TENSOR_MIN_BYTES = 1024


class MappedTensor(ir.Tensor):
    """An initializer viewing the ``raw_data`` bytes of the ``.onnx`` file it was read from."""

    def __init__(
        self,
        array: np.ndarray,
        *,
        path: Path,
        offset: int,
        file_identity: tuple[int, ...],
        **kwargs: Any,
    ) -> None:
        super().__init__(array, **kwargs)
        self.path = path
        self.offset = offset
        self._file_identity = file_identity

    def file_unchanged(self) -> bool:
        """Whether ``path`` still holds the file this tensor was read from."""
        try:
            return _identity(os.stat(self.path)) == self._file_identity
        except OSError:
            return False


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class _FileBytes:
    """Random access to a file through ``pread``, for walking the message headers.

    Walking through the mapping instead would map in whole page-cache folios (up to 2 MiB each)
    around every header, which sit right beside the weights, and count them as resident.
    """

    _WINDOW = 1 << 16

    def __init__(self, descriptor: int, size: int) -> None:
        self._descriptor = descriptor
        self._size = size
        self._window_start = 0
        self._window = b""

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...
    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, slice):
            return os.pread(self._descriptor, index.stop - index.start, index.start)
        offset = index - self._window_start
        if not 0 <= offset < len(self._window):
            self._window_start = index
            self._window = os.pread(self._descriptor, self._WINDOW, index)
            offset = 0
            if not self._window:
                raise WireError("read past the end of the file")
        return self._window[offset]


@dataclass(frozen=True)
class _RawData:
    offset: int
    length: int
    data_type: int


def _length_delimited(number: int, payload: bytes) -> bytes:
    return key(number, LENGTH_DELIMITED) + varint(len(payload)) + payload


def _fields(buffer: _FileBytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yields ``(number, wire_type, field_start, value_start, value_end)`` for each field."""
    position = start
    while position < end:
        number, wire_type, value_start, value_end = field(buffer, position, end)
        yield number, wire_type, position, value_start, value_end
        position = value_end


def _split_raw_data(buffer: _FileBytes, start: int, end: int) -> tuple[bytes, _RawData | None]:
    """A TensorProto's bytes without ``raw_data``, and where that ``raw_data`` lies.

    Only the tensor's small fields are read here; a tensor left whole is read in one piece.
    """
    kept: list[tuple[int, int]] = []
    raw: tuple[int, int] | None = None
    data_type = 0
    for number, wire_type, field_start, value_start, value_end in _fields(buffer, start, end):
        if number == _RAW_DATA and wire_type == LENGTH_DELIMITED:
            if raw is not None:  # a repeated raw_data would merge: leave it to protobuf
                raise WireError("raw_data twice")
            raw = (value_start, value_end - value_start)
            continue
        if number == _DATA_TYPE and wire_type == VARINT:
            data_type, _ = read_varint(buffer, value_start, value_end)
        if number == _DATA_LOCATION and wire_type == VARINT:
            location, _ = read_varint(buffer, value_start, value_end)
            if location != onnx.TensorProto.DEFAULT:
                raise WireError("external tensor with raw_data")
        kept.append((field_start, value_end))
    if raw is None or raw[1] < MAPPED_TENSOR_MIN_BYTES or not _mappable(data_type):
        return buffer[start:end], None
    fields = b"".join(buffer[field_start:field_end] for field_start, field_end in kept)
    return fields, _RawData(raw[0], raw[1], data_type)


def _mappable(data_type: int) -> bool:
    try:
        dtype = ir.DataType(data_type)
    except ValueError:
        return False
    # Sub-byte types are packed two or four to a byte; strings are not in raw_data.
    return dtype != ir.DataType.STRING and dtype.bitwidth >= 8


def _strip_weights(buffer: _FileBytes) -> tuple[bytes, list[_RawData | None]]:
    """The model's bytes minus initializers' raw data, and each initializer's raw data place."""
    model_fields: list[bytes] = []
    graph: tuple[int, int] | None = None
    for number, wire_type, field_start, value_start, value_end in _fields(buffer, 0, len(buffer)):
        if number == _GRAPH and wire_type == LENGTH_DELIMITED:
            if graph is not None:  # two graph fields merge in protobuf; not worth imitating
                raise WireError("graph twice")
            graph = (value_start, value_end)
        else:
            model_fields.append(buffer[field_start:value_end])
    if graph is None:
        raise WireError("no graph")
    graph_fields: list[bytes] = []
    placements: list[_RawData | None] = []
    for number, wire_type, field_start, value_start, value_end in _fields(buffer, *graph):
        if number == _INITIALIZER and wire_type == LENGTH_DELIMITED:
            tensor_bytes, placement = _split_raw_data(buffer, value_start, value_end)
            graph_fields.append(_length_delimited(_INITIALIZER, tensor_bytes))
            placements.append(placement)
        else:
            graph_fields.append(buffer[field_start:value_end])
    model_fields.append(_length_delimited(_GRAPH, b"".join(graph_fields)))
    return b"".join(model_fields), placements


def load_mapped(path: Path) -> ir.Model | None:
    """The model at ``path`` with its large initializers viewing a read-only mapping of the file.

    ``None`` where the file is not laid out as expected; ``ir.load`` then reads it (and reports
    what is wrong with it).
    """
    if sys.byteorder != "little":  # raw_data is little-endian; views would need a byte swap
        return None
    descriptor, stat = open_regular(path)
    with open(descriptor, "rb") as file:
        try:
            stripped, placements = _strip_weights(_FileBytes(file.fileno(), stat.st_size))
        except WireError:
            return None
        if not any(placements):
            return None
        try:
            buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file that cannot be mapped
            return None
    file_identity = _identity(stat)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(stripped)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and upb's RuntimeError alike
        return None
    if len(proto.graph.initializer) != len(placements):
        return None
    views: dict[str, MappedTensor] = {}
    for tensor_proto, placement in zip(proto.graph.initializer, placements, strict=True):
        if placement is None:
            continue
        tensor = _view(buffer, tensor_proto, placement, path.resolve(), file_identity)
        if tensor is None or tensor_proto.name in views:
            return None
        views[tensor_proto.name] = tensor
    model = ir.serde.deserialize_model(proto)
    for name, tensor in views.items():
        value = model.graph.initializers.get(name)
        if value is None:
            return None
        value.const_value = tensor
    ir.external_data.set_base_dir(model.graph, path.parent)
    # Raises rather than falls back: the plain load would find the same fault, at twice the cost.
    check_loaded(proto, model, path)
    return model


def _view(
    buffer: mmap.mmap,
    proto: onnx.TensorProto,
    placement: _RawData,
    path: Path,
    file_identity: tuple[int, ...],
) -> MappedTensor | None:
    dtype = ir.DataType(placement.data_type)
    numpy_dtype = np.dtype(dtype.numpy()).newbyteorder("<")
    shape = tuple(proto.dims)
    count = math.prod(shape)  # Python integers: a shape of 2**32 x 2**32 must not wrap to 0
    if count * numpy_dtype.itemsize != placement.length:
        return None
    array = np.frombuffer(buffer, dtype=numpy_dtype, count=count, offset=placement.offset)
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    return MappedTensor(
        array.reshape(shape),
        path=path,
        offset=placement.offset,
        file_identity=file_identity,
        dtype=dtype,
        name=proto.name,
        doc_string=proto.doc_string or None,
        metadata_props=metadata or None,
    )


def map_external_data(model: ir.Model) -> None:
    """Replaces each initializer on external data with a view of one mapping per file.

    onnx_ir's ``ExternalTensor`` maps its whole data file once per tensor, so a model of n
    tensors in one file reserves n times the file's size of address space (191 tensors of a 3.6 GB
    file reach 655 GB) and fails under an address-space limit (``ulimit -v``). Here each file is
    mapped once, read-only, and every tensor becomes a :class:`MappedTensor` viewing its bytes; as
    with weights inside the ``.onnx``, a consumer wanting writable weights maps its own
    copy-on-write range from ``path`` and ``offset``. Run after ``check_loaded`` (which checked each
    location and size); a tensor whose type cannot be viewed (sub-byte, strings) or whose file
    cannot be mapped stays an ``ExternalTensor``.
    """
    if sys.byteorder != "little":  # external data is little-endian; views would need a byte swap
        return
    mappings: dict[str, tuple[mmap.mmap, tuple[int, ...]] | None] = {}
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if not isinstance(tensor, ir.ExternalTensor) or tensor.size == 0:
                continue
            if tensor.dtype == ir.DataType.STRING or tensor.dtype.bitwidth < 8:
                continue
            path = os.path.realpath(tensor.path)
            if path not in mappings:
                mappings[path] = _map_file(path)
            mapping = mappings[path]
            if mapping is None:
                continue
            buffer, file_identity = mapping
            numpy_dtype = np.dtype(tensor.dtype.numpy()).newbyteorder("<")
            offset = tensor.offset or 0
            if offset + tensor.size * numpy_dtype.itemsize > len(buffer):
                continue  # check_loaded refuses this; never view past the end
            array = np.frombuffer(buffer, dtype=numpy_dtype, count=tensor.size, offset=offset)
            value.const_value = MappedTensor(
                array.reshape(tuple(tensor.shape.numpy())),
                path=Path(path),
                offset=offset,
                file_identity=file_identity,
                dtype=tensor.dtype,
                name=tensor.name,
                doc_string=tensor.doc_string,
                metadata_props=dict(tensor.metadata_props) or None,
            )


def _map_file(path: str) -> tuple[mmap.mmap, tuple[int, ...]] | None:
    try:
        descriptor, stat = open_regular(Path(path), what="external data")
        with open(descriptor, "rb") as file:
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ), _identity(stat)
    except OSError as error:
        if error.errno == errno.ENOMEM:  # the address space is full: the machine's limit
            raise unexpected_error(error, "mapping the external data", path=path) from None
        return None
    except (BadInputError, ValueError):  # left to the ExternalTensor, which says what is wrong
        return None
