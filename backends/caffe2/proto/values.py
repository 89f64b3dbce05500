"""Fast reading and writing of the large ``floats``/``ints`` lists of GivenTensor*Fill arguments.

A ResNet-50's weights are 25 million floats; moving them through protobuf's Python containers one
element at a time costs seconds. Instead, values are written as one packed field merged from bytes
(every protobuf parser accepts packed encoding for a repeated scalar) and read back by viewing the
serialized field with numpy. Both paths check what they see and fall back to the element-wise way.
"""

from __future__ import annotations

import numpy as np

from unframe.backends.caffe2.proto import caffe2_pb2

_FLOATS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["floats"].number
_INTS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["ints"].number
#: Below this many values the plain element-wise path is as fast.
_FAST_MIN = 4096
_WIRE_FIXED32 = 5
_WIRE_LENGTH_DELIMITED = 2
#: One unpacked float on the wire: its tag byte, then 4 little-endian bytes.
_UNPACKED_FLOAT = np.dtype([("tag", "u1"), ("value", "<f4")])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> bytes:
    """Base-128 varints of int64 values (two's complement, as protobuf encodes int64)."""
    unsigned = values.astype(np.int64).view(np.uint64)
    groups = np.zeros((unsigned.size, 10), dtype=np.uint8)
    remaining = unsigned.copy()
    lengths = np.ones(unsigned.size, dtype=np.int64)
    for position in range(10):
        groups[:, position] = (remaining & np.uint64(0x7F)).astype(np.uint8)
        remaining >>= np.uint64(7)
        more = remaining != 0
        groups[more, position] |= 0x80
        lengths += more
    keep = np.arange(10)[None, :] < lengths[:, None]
    return groups[keep].tobytes()


def set_floats(arg: caffe2_pb2.Argument, values: np.ndarray) -> None:
    """Appends ``values`` (as float32) to ``arg.floats``."""
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    if flat.size < _FAST_MIN:
        arg.floats.extend(flat.tolist())
        return
    payload = flat.tobytes()
    tag = bytes([(_FLOATS << 3) | _WIRE_LENGTH_DELIMITED])
    arg.MergeFromString(tag + _varint(len(payload)) + payload)


def set_ints(arg: caffe2_pb2.Argument, values: np.ndarray) -> None:
    """Appends ``values`` (as int64) to ``arg.ints``."""
    flat = np.asarray(values).astype(np.int64).reshape(-1)
    if flat.size < _FAST_MIN:
        arg.ints.extend(flat.tolist())
        return
    payload = _varints(flat)
    tag = bytes([(_INTS << 3) | _WIRE_LENGTH_DELIMITED])
    arg.MergeFromString(tag + _varint(len(payload)) + payload)


def get_floats(arg: caffe2_pb2.Argument) -> np.ndarray:
    """``arg.floats`` as a float32 array."""
    count = len(arg.floats)
    if count < _FAST_MIN:
        return np.asarray(arg.floats, dtype=np.float32)
    # Fields serialize in field-number order; only the floats, as unpacked fixed32, are wanted.
    only = caffe2_pb2.Argument()
    only.floats.MergeFrom(arg.floats)
    data = only.SerializeToString()
    if len(data) == count * _UNPACKED_FLOAT.itemsize:
        records = np.frombuffer(data, dtype=_UNPACKED_FLOAT)
        if (records["tag"] == (_FLOATS << 3) | _WIRE_FIXED32).all():
            return records["value"].astype(np.float32)
    return np.asarray(arg.floats, dtype=np.float32)


def get_ints(arg: caffe2_pb2.Argument) -> np.ndarray:
    """``arg.ints`` as an int64 array."""
    return np.asarray(arg.ints, dtype=np.int64)
