"""The protobuf wire format, read and written by hand where protobuf's own parser costs too much.

Both fast paths that move weights around protobuf (``shared_ir.onnx_wire`` for ``.onnx`` files,
``backends.caffe2.native.wire`` for NetDefs) walk messages with these: a message is a run of
fields, each a varint key (field number << 3 | wire type) and a value whose extent the wire type
gives. Anything else (group wire types, broken varints, lengths past the end) is a
:class:`WireError`, on which callers fall back to protobuf.
"""

from __future__ import annotations

from typing import Protocol

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(Exception):
    """Bytes that a hand-written walk does not handle; the caller parses with protobuf instead."""


class Indexable(Protocol):
    def __getitem__(self, index: int, /) -> int: ...


def varint(value: int) -> bytes:
    """The base-128 varint of a non-negative ``value``."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def key(number: int, wire_type: int) -> bytes:
    """A field's key (tag) on the wire."""
    return varint(number << 3 | wire_type)


def read_varint(data: Indexable, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("broken varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def field(data: Indexable, pos: int, end: int) -> tuple[int, int, int, int]:
    """The field at ``pos``: (number, wire type, start of its value, end of the field)."""
    tag, body = read_varint(data, pos, end)
    number, wire_type = tag >> 3, tag & 7
    if number == 0:
        raise WireError("field number 0")
    if wire_type == VARINT:
        _, stop = read_varint(data, body, end)
    elif wire_type == FIXED64:
        stop = body + 8
    elif wire_type == FIXED32:
        stop = body + 4
    elif wire_type == LENGTH_DELIMITED:
        length, body = read_varint(data, body, end)
        stop = body + length
    else:
        raise WireError(f"wire type {wire_type}")
    if stop > end:
        raise WireError("field runs past its message")
    return number, wire_type, body, stop
