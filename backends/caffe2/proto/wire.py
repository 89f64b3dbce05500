"""NetDef bytes read and written around protobuf, so that weights never pass through it one by one.

Caffe2 declares ``Argument.floats``/``ints`` as proto2 unpacked repeated fields: protobuf reads and
writes a ResNet-50's 25 million weights one 5-byte record at a time, ten times the cost of moving
the bytes. Here the NetDef is walked on the wire just far enough to find the large ``floats`` and
``ints`` lists of its operators' arguments:

* reading, a float list (unpacked records or packed) is viewed with numpy and handed to protobuf as
  one packed field, which it copies in one go; Caffe2's unpacked lists are repacked over the file's
  own bytes where those are writable. Packed int lists are decoded with numpy too (protobuf parses
  them fast itself; unpacked ones are left to it). Everything else is parsed by protobuf itself;
* writing, an argument whose values the codec (``values.py``) still holds as an array is written as
  protobuf's serialization of the rest of the argument plus one packed field of those values.

Protobuf requires parsers to accept packed encoding where a ``.proto`` declares a repeated scalar
unpacked (and vice versa), so Caffe2's own parser reads what is written here. Anything that this
module does not expect (group wire types, a broken varint, a length past the end) makes it give up,
and the caller parses with protobuf alone, which also reports corrupt data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from unframe.backends.caffe2.proto import caffe2_pb2
from unframe.shared_ir.protowire import (
    FIXED32,
    LENGTH_DELIMITED,
    WireError,
    field,
    key,
    varint,
)

NET_OP = caffe2_pb2.NetDef.DESCRIPTOR.fields_by_name["op"].number
OP_ARG = caffe2_pb2.OperatorDef.DESCRIPTOR.fields_by_name["arg"].number
ARG_FLOATS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["floats"].number
ARG_INTS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["ints"].number
#: Below this many values protobuf's own path is as fast.
FAST_MIN = 4096
#: One unpacked float on the wire: its one-byte key, then 4 little-endian bytes.
_UNPACKED_FLOAT = np.dtype([("key", "u1"), ("value", "<f4")])
_FLOAT_KEY = ARG_FLOATS << 3 | FIXED32
assert _FLOAT_KEY < 0x80, "the unpacked-float view needs a one-byte key"
#: An argument with more fields than this besides floats is left to protobuf.
_MAX_OTHER_FIELDS = 64

#: What the writer asks the codec for each argument: (field name, values) or None.
CachedValues = Callable[[caffe2_pb2.Argument], "tuple[str, np.ndarray] | None"]


#: Serialized bytes; a bytearray or a writable memoryview (of bytes) may be repacked in place.
Buffer = bytes | bytearray | memoryview


def _writable(data: Buffer) -> bool:
    return isinstance(data, bytearray) or (isinstance(data, memoryview) and not data.readonly)


def varints(values: np.ndarray) -> bytes:
    """Packed varints of int64 values (negative ones as 10-byte two's complement, as protobuf)."""
    remaining = values.astype(np.int64).view(np.uint64).copy()
    groups = np.zeros((remaining.size, 10), dtype=np.uint8)
    lengths = np.ones(remaining.size, dtype=np.int64)
    for position in range(10):
        groups[:, position] = (remaining & np.uint64(0x7F)).astype(np.uint8)
        remaining >>= np.uint64(7)
        more = remaining != 0
        groups[more, position] |= 0x80
        lengths += more
    keep = np.arange(10)[None, :] < lengths[:, None]
    return groups[keep].tobytes()


def empty_buffer(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes, not zeroed (``bytearray(size)`` zeroes them first)."""
    return np.empty(size, dtype=np.uint8).data


def packed_floats(values: np.ndarray) -> tuple[memoryview, np.ndarray]:
    """A serialized ``floats`` field holding ``values`` packed, and a view of the floats in it."""
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    head = key(ARG_FLOATS, LENGTH_DELIMITED) + varint(flat.nbytes)
    buffer = empty_buffer(len(head) + flat.nbytes)
    buffer[: len(head)] = head
    view = np.frombuffer(buffer, dtype="<f4", offset=len(head))
    view[:] = flat
    return buffer, view


# -- decoding -----------------------------------------------------------------------------------
def decode_varints(payload: np.ndarray) -> np.ndarray:
    """The int64 values of packed varints (``payload`` as uint8), as protobuf reads them."""
    if payload.size == 0:
        return np.zeros(0, dtype=np.int64)
    if payload[-1] >= 0x80:
        raise WireError("packed varints end inside a varint")
    ends = np.flatnonzero(payload < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        raise WireError("a varint longer than 10 bytes")
    values = np.zeros(ends.size, dtype=np.uint64)
    for position in range(longest):
        has = lengths > position
        group = (payload[starts[has] + position] & 0x7F).astype(np.uint64)
        values[has] |= group << np.uint64(7 * position)  # bits past 64 drop, as in protobuf
    return values.view(np.int64)


@dataclass
class _ArgLists:
    """One Argument on the wire: its bytes other than its floats, its floats and its ints."""

    others: bytes
    floats: list[np.ndarray]
    ints: np.ndarray | None  # decoded from packed fields; None where some are unpacked or few

    @property
    def float_count(self) -> int:
        return sum(chunk.size for chunk in self.floats)


def _arg_lists(data: Buffer, start: int, end: int) -> _ArgLists | None:
    """An Argument split for the fast path; None where it holds no large float or int list.

    Also None for an argument with many other fields (unpacked ints, strings): walking them here
    one by one would be slower than protobuf. Packed ints stay among the other bytes (protobuf
    reads them fast) and are decoded too, for ``get_ints``.
    """
    others: list[bytes] = []
    floats: list[np.ndarray] = []
    ints: list[np.ndarray] | None = []
    pos = start
    while pos < end:
        number, wire_type, body, stop = field(data, pos, end)
        if number == ARG_FLOATS and wire_type == FIXED32:
            # A run of unpacked records, as Caffe2 writes them: up to the first other key.
            records = np.frombuffer(data, dtype=_UNPACKED_FLOAT, count=(end - pos) // 5, offset=pos)
            breaks = np.flatnonzero(records["key"] != _FLOAT_KEY)
            run = int(breaks[0]) if breaks.size else records.size
            if run == 0:  # a key spelled in more than one byte
                raise WireError("unexpected float key")
            floats.append(records["value"][:run])
            pos += 5 * run
            continue
        if number == ARG_FLOATS and wire_type == LENGTH_DELIMITED:
            if (stop - body) % 4:
                raise WireError("packed floats of a length not a multiple of 4")
            floats.append(np.frombuffer(data, dtype="<f4", count=(stop - body) // 4, offset=body))
            pos = stop
            continue
        if number == ARG_INTS and ints is not None:
            if wire_type == LENGTH_DELIMITED:
                ints.append(decode_varints(np.frombuffer(data, np.uint8, stop - body, body)))
            else:
                ints = None  # unpacked ints: left to protobuf
        if len(others) >= _MAX_OTHER_FIELDS:
            return None
        others.append(bytes(data[pos:stop]))
        pos = stop
    lists = _ArgLists(b"".join(others), floats, None)
    if ints is not None and sum(chunk.size for chunk in ints) >= FAST_MIN:
        lists.ints = ints[0] if len(ints) == 1 else np.concatenate(ints)
    if lists.float_count < FAST_MIN:
        lists.floats = []
        if lists.ints is None:
            return None
    return lists


@dataclass
class _OpPlan:
    """What the walk found in one OperatorDef: where its bytes are and how to repack them."""

    start: int
    end: int
    pieces: list[bytes | list[np.ndarray]]  # the op's new bytes: copies, and float runs
    size: int  # of the new bytes
    places: list[tuple[int, int, int]]  # per repacked list: arg index, offset, float count
    lists: list[tuple[int, str, np.ndarray]]  # per large list: arg index, field, values
    rewrite: bool  # whether the op's own bytes do not serve


def _plan_op(data: Buffer, start: int, end: int) -> _OpPlan | None:
    """Walks one OperatorDef; None where it has no large list. Reads ``data`` only."""
    pieces: list[bytes | list[np.ndarray]] = []
    places: list[tuple[int, int, int]] = []
    lists: list[tuple[int, str, np.ndarray]] = []
    rewrite = False
    size = 0
    arg_index = -1
    pos = start
    while pos < end:
        number, wire_type, body, stop = field(data, pos, end)
        split = None
        if number == OP_ARG and wire_type == LENGTH_DELIMITED:
            arg_index += 1
            split = _arg_lists(data, body, stop)
        if split is None or not split.floats:
            if split is not None and split.ints is not None:
                lists.append((arg_index, "ints", split.ints))
            pieces.append(bytes(data[pos:stop]))
            size += stop - pos
            pos = stop
            continue
        if split.ints is not None:
            lists.append((arg_index, "ints", split.ints))
        if len(split.floats) == 1 and split.floats[0].flags.c_contiguous:
            lists.append((arg_index, "floats", split.floats[0]))
        else:
            rewrite = True
        count = split.float_count
        floats_head = key(ARG_FLOATS, LENGTH_DELIMITED) + varint(4 * count)
        arg_size = len(split.others) + len(floats_head) + 4 * count
        head = key(OP_ARG, LENGTH_DELIMITED) + varint(arg_size) + split.others + floats_head
        pieces.append(head)
        size += len(head)
        places.append((arg_index, size, count))
        pieces.append(split.floats)
        size += 4 * count
        pos = stop
    if not lists and not places:
        return None
    return _OpPlan(start, end, pieces, size, places, lists, rewrite)


#: Floats copied at a time when repacking in place.
_BLOCK = 1 << 16


def _safe_in_place(runs: list[tuple[int, np.ndarray]], moves: list[int]) -> bool:
    """Whether float runs can be repacked over their own bytes, each run copied block by block.

    Within a run, block k is read before it is written, and its write must end before block
    k+1's source starts: a run of 5-byte records may move up to a block later, a packed run only
    earlier. Across runs, those that move later are copied last first, those that move earlier
    first first, so that no run is written over before it is read; mixed directions are not.
    """
    for (_, chunk), move in zip(runs, moves, strict=True):
        limit = {4: 0, _UNPACKED_FLOAT.itemsize: _BLOCK}.get(chunk.strides[0])
        if limit is None or move > limit:
            return False
    return all(move >= 0 for move in moves) or all(move <= 0 for move in moves)


def _copy_forward(target: np.ndarray, source: np.ndarray) -> None:
    """``target[:] = source`` block by block from the start, each block read before written."""
    staging = np.empty(min(_BLOCK, source.size), dtype="<f4")
    for start in range(0, source.size, _BLOCK):
        block = source[start : start + _BLOCK]
        staging[: block.size] = block
        target[start : start + block.size] = staging[: block.size]


def _repack(
    plan: _OpPlan, data: Buffer
) -> tuple[memoryview | None, list[tuple[int, str, np.ndarray]]]:
    """The op's bytes with its float lists packed (None where its own serve), and its lists.

    The new bytes are shorter than the op's (4 bytes a float, not 5), so where ``data`` is
    writable they are written over the op's own bytes.
    """
    if not plan.rewrite:
        return None, plan.lists
    in_place = _writable(data) and plan.size <= plan.end - plan.start
    base = plan.start if in_place else 0
    heads: list[tuple[int, bytes]] = []
    runs: list[tuple[int, np.ndarray]] = []
    offset = base
    for piece in plan.pieces:
        if isinstance(piece, bytes):
            heads.append((offset, piece))
            offset += len(piece)
            continue
        for chunk in piece:
            runs.append((offset, chunk))
            offset += 4 * chunk.size
    if in_place:
        origin = np.frombuffer(data, np.uint8).ctypes.data
        moves = [target - (chunk.ctypes.data - origin) for target, chunk in runs]
        in_place = _safe_in_place(runs, moves)
        if in_place and all(move >= 0 for move in moves):
            runs.reverse()
        if not in_place:
            base = 0
            heads = [(target - plan.start, piece) for target, piece in heads]
            runs = [(target - plan.start, chunk) for target, chunk in runs]
    out = data if in_place else empty_buffer(plan.size)
    assert not isinstance(out, bytes)
    for target, chunk in runs:
        floats = np.frombuffer(out, dtype="<f4", count=chunk.size, offset=target)
        if in_place:
            _copy_forward(floats, chunk)
        else:
            floats[:] = chunk
    for target, piece in heads:
        out[target : target + len(piece)] = piece
    lists = [entry for entry in plan.lists if entry[1] == "ints"]
    lists.extend(
        (index, "floats", np.frombuffer(out, dtype="<f4", count=count, offset=base + offset))
        for index, offset, count in plan.places
    )
    return memoryview(out)[base : base + plan.size], lists


def parse_netdef(
    data: Buffer,
) -> tuple[caffe2_pb2.NetDef, list[tuple[caffe2_pb2.Argument, str, np.ndarray]]]:
    """A NetDef parsed with its large float lists moved as packed bytes, and those lists.

    Returns the net and, for each large ``floats`` or (packed) ``ints`` list, its argument, the
    field's name and its values. Writable ``data`` is overwritten where lists are repacked.

    Raises:
        WireError: the bytes are not what this fast path handles (or not a NetDef at all); parse
            them with protobuf instead. Raised before anything in ``data`` is changed.
        DecodeError: protobuf refuses an op's other fields; it would refuse the whole net too.
    """
    others: list[bytes] = []
    ops: list[tuple[int, int, _OpPlan | None]] = []
    pos, end = 0, len(data)
    view = memoryview(data)
    while pos < end:  # the whole walk comes first, so that WireError leaves data as it was
        number, wire_type, body, stop = field(data, pos, end)
        if number == NET_OP and wire_type == LENGTH_DELIMITED:
            ops.append((body, stop, _plan_op(data, body, stop)))
        else:
            others.append(bytes(view[pos:stop]))
        pos = stop
    if not any(plan is not None for _, _, plan in ops):
        raise WireError("no large value lists: nothing to gain")
    net = caffe2_pb2.NetDef()
    found: list[tuple[caffe2_pb2.Argument, str, np.ndarray]] = []
    for body, stop, plan in ops:
        op = net.op.add()
        if plan is None:
            op.MergeFromString(view[body:stop])
            continue
        repacked, lists = _repack(plan, data)
        op.MergeFromString(view[body:stop] if repacked is None else repacked)
        found.extend((op.arg[index], field, values) for index, field, values in lists)
    net.MergeFromString(b"".join(others))
    return net, found


# -- writing ------------------------------------------------------------------------------------
def _without(message: Message, field: str) -> Message | None:
    """A copy of ``message`` without ``field``; None where it has unknown fields to keep."""
    if len(UnknownFieldSet(message)):
        return None
    shell = type(message)()
    for descriptor, value in message.ListFields():
        if descriptor.name == field:
            continue
        if descriptor.is_repeated:
            getattr(shell, descriptor.name).extend(value)
        elif descriptor.message_type is not None:
            getattr(shell, descriptor.name).CopyFrom(value)
        else:
            setattr(shell, descriptor.name, value)
    return shell


def _arg_parts(
    arg: caffe2_pb2.Argument, cached: tuple[str, np.ndarray]
) -> list[bytes | memoryview]:
    """An Argument's serialization, with its cached values as one packed field."""
    field, values = cached
    shell = _without(arg, field)
    if shell is None:
        return [arg.SerializeToString()]
    if field == "floats":
        payload: bytes | memoryview = np.ascontiguousarray(values, "<f4").data.cast("B")
        number = ARG_FLOATS
    else:
        payload = varints(values)
        number = ARG_INTS
    return [
        shell.SerializeToString() + key(number, LENGTH_DELIMITED) + varint(len(payload)),
        payload,
    ]


def _op_parts(
    op: caffe2_pb2.OperatorDef, found: list[tuple[str, np.ndarray] | None]
) -> list[bytes | memoryview]:
    """An OperatorDef's serialization as pieces, the values ``found`` for its args as held."""
    shell = _without(op, "arg") if any(found) else None
    if shell is None:
        return [op.SerializeToString()]
    parts: list[bytes | memoryview] = [shell.SerializeToString()]
    for arg, values in zip(op.arg, found, strict=True):
        pieces = [arg.SerializeToString()] if values is None else _arg_parts(arg, values)
        size = sum(len(piece) for piece in pieces)
        parts.append(key(OP_ARG, LENGTH_DELIMITED) + varint(size))
        parts.extend(pieces)
    return parts


def write_netdef(net: caffe2_pb2.NetDef, handle: BinaryIO, cached: CachedValues) -> None:
    """Writes ``net`` serialized to ``handle``, each value list that ``cached`` gives packed.

    Ops are serialized and written one at a time, so that the file's bytes are never all in
    memory at once.
    """
    header = _without(net, "op")
    found = [[cached(arg) for arg in op.arg] for op in net.op]
    if header is None or not any(any(op_found) for op_found in found):
        handle.write(net.SerializeToString())
        return
    handle.write(header.SerializeToString())
    for op, op_found in zip(net.op, found, strict=True):
        parts = _op_parts(op, op_found)
        handle.write(key(NET_OP, LENGTH_DELIMITED) + varint(sum(len(part) for part in parts)))
        for part in parts:
            handle.write(part)
