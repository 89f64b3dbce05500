"""NetDef bytes read and written around protobuf, so that weights never pass through it one by one.

Caffe2 declares ``Argument.floats``/``ints`` as proto2 unpacked repeated fields: protobuf reads and
writes a ResNet-50's 25 million weights one 5-byte record at a time, ten times the cost of moving
the bytes. Here the NetDef is walked on the wire just far enough to find the large ``floats`` and
``ints`` lists of its operators' arguments:

* reading, a float list (unpacked records or packed) is viewed with numpy. ``parse_netdef_with_lists`` hands
  it to protobuf as one packed field, which protobuf copies in one go (Caffe2's unpacked records
  are gathered into that field first), so the message is complete. ``parse_netdef_detached``
  leaves the large lists out of the message and returns them beside it: packed ones as views of
  the file's bytes, unpacked ones gathered once; that is the importer's path, which copies each
  weight at most once. Packed int lists are decoded with numpy too (protobuf parses them fast
  itself; unpacked ones are left to it). Everything else is parsed by protobuf itself;
* writing, an argument whose values the codec (``values.py``) still holds as an array is written as
  protobuf's serialization of the rest of the argument plus one packed field of those values.

Protobuf requires parsers to accept packed encoding where a ``.proto`` declares a repeated scalar
unpacked (and vice versa), so Caffe2's own parser reads what is written here. Anything that this
module does not expect (group wire types, a broken varint, a length past the end) makes it give up,
and the caller parses with protobuf alone, which also reports corrupt data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from unframe.backends.caffe2.native import caffe2_pb2
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
UNPACKED_FLOAT = np.dtype([("key", "u1"), ("value", "<f4")])
FLOAT_KEY = ARG_FLOATS << 3 | FIXED32
assert FLOAT_KEY < 0x80, "the unpacked-float view needs a one-byte key"
#: An argument with more fields than this besides floats is left to protobuf.
_MAX_OTHER_FIELDS = 64

#: What the writer asks the codec for each argument: (field name, values) or None.
CachedValues = Callable[[caffe2_pb2.Argument], "tuple[str, np.ndarray] | None"]


#: Serialized bytes.
Buffer = bytes | bytearray | memoryview


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
    """One Argument on the wire with a large list: where its fields are, its floats and ints."""

    span: tuple[int, int]  # the whole ``arg`` field of the OperatorDef, key included
    fields: list[tuple[int, int, str]]  # (start, stop, "floats" / "ints" / "") per field
    floats: list[np.ndarray]  # empty where there are too few to take
    ints: np.ndarray | None  # decoded from packed fields; None where some are unpacked or few

    @property
    def float_count(self) -> int:
        return sum(chunk.size for chunk in self.floats)

    def body(self, data: Buffer, leave_out: tuple[str, ...]) -> bytes:
        """The Argument's bytes without the fields of the kinds ``leave_out`` names."""
        return b"".join(bytes(data[s:e]) for s, e, kind in self.fields if kind not in leave_out)

    @property
    def packed(self) -> np.ndarray | None:
        """The floats as they lie in the data, where that is one packed field; else None (they
        are records, or several runs, to gather)."""
        if len(self.floats) != 1:
            return None
        (chunk,) = self.floats
        return chunk if chunk.dtype == np.dtype("<f4") and chunk.flags.c_contiguous else None

    def taken(self) -> tuple[str, ...]:
        """The kinds of list this argument hands over as arrays."""
        return ("floats",) * bool(self.floats) + ("ints",) * (self.ints is not None)


def _arg_lists(data: Buffer, span: tuple[int, int], start: int, end: int) -> _ArgLists | None:
    """An Argument split for the fast path; None where it holds no large float or int list.

    Also None for an argument with many other fields (unpacked ints, strings): walking them here
    one by one would be slower than protobuf.
    """
    fields: list[tuple[int, int, str]] = []
    floats: list[np.ndarray] = []
    ints: list[np.ndarray] | None = []
    others = 0
    pos = start
    while pos < end:
        number, wire_type, body, stop = field(data, pos, end)
        if number == ARG_FLOATS and wire_type == FIXED32:
            # A run of unpacked records, as Caffe2 writes them: up to the first other key.
            records = np.frombuffer(data, dtype=UNPACKED_FLOAT, count=(end - pos) // 5, offset=pos)
            if (end - pos) % 5 == 0 and records["key"][-1] == FLOAT_KEY:
                # Most likely the rest of the argument (Caffe2 writes floats last): the keys are
                # checked while the values are gathered, the bytes read once (``_gather``).
                run = records.size
                floats.append(records)
            else:
                breaks = np.flatnonzero(records["key"] != FLOAT_KEY)
                run = int(breaks[0]) if breaks.size else records.size
                if run == 0:  # a key spelled in more than one byte
                    raise WireError("unexpected float key")
                floats.append(records["value"][:run])
            fields.append((pos, pos + 5 * run, "floats"))
            pos += 5 * run
            continue
        if number == ARG_FLOATS and wire_type == LENGTH_DELIMITED:
            if (stop - body) % 4:
                raise WireError("packed floats of a length not a multiple of 4")
            floats.append(np.frombuffer(data, dtype="<f4", count=(stop - body) // 4, offset=body))
            fields.append((pos, stop, "floats"))
            pos = stop
            continue
        kind = ""
        if number == ARG_INTS and ints is not None:
            if wire_type == LENGTH_DELIMITED:
                ints.append(decode_varints(np.frombuffer(data, np.uint8, stop - body, body)))
                kind = "ints"
            else:
                ints = None  # unpacked ints: left to protobuf
        if not kind:
            others += 1
            if others > _MAX_OTHER_FIELDS:
                return None
        fields.append((pos, stop, kind))
        pos = stop
    lists = _ArgLists(span, fields, floats, None)
    if ints is not None and sum(chunk.size for chunk in ints) >= FAST_MIN:
        lists.ints = ints[0] if len(ints) == 1 else np.concatenate(ints)
    else:
        lists.fields = [(s, e, "" if kind == "ints" else kind) for s, e, kind in fields]
    if lists.float_count < FAST_MIN:
        lists.floats = []
        lists.fields = [(s, e, "" if kind == "floats" else kind) for s, e, kind in lists.fields]
        if lists.ints is None:
            return None
    return lists


#: Records gathered at a time: the keys are checked, then the values copied while still cached.
_GATHER_BLOCK = 1 << 16
_FLOAT_KEYS = bytes([FLOAT_KEY]) * _GATHER_BLOCK


def _gather(chunks: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """The chunks' floats, one after another, in ``out`` (or new memory).

    A chunk of whole unpacked records (``UNPACKED_FLOAT``) is a run whose keys are not yet
    checked; one that is not all float keys raises WireError.
    """
    if out is None:
        out = np.empty(sum(chunk.size for chunk in chunks), dtype="<f4")
    offset = 0
    for chunk in chunks:
        target = out[offset : offset + chunk.size]
        offset += chunk.size
        if chunk.dtype != UNPACKED_FLOAT:
            np.copyto(target, chunk)
            continue
        keys, values = chunk["key"], chunk["value"]
        for start in range(0, chunk.size, _GATHER_BLOCK):
            block = slice(start, start + _GATHER_BLOCK)
            found = keys[block].tobytes()  # then one memcmp: twice as fast as a numpy compare
            if found != (_FLOAT_KEYS if len(found) == _GATHER_BLOCK else _FLOAT_KEYS[: len(found)]):
                raise WireError("another field among unpacked floats")
            np.copyto(target[block], values[block])
    return out


#: One OperatorDef on the wire: its fields, verbatim ones as (start, stop), args with large lists
#: as (arg index, lists).
_OpPlan = list["tuple[int, int] | tuple[int, _ArgLists]"]


def _plan_op(data: Buffer, start: int, end: int) -> _OpPlan | None:
    """Walks one OperatorDef; None where it has no large list. Reads ``data`` only."""
    plan: _OpPlan = []
    arg_index = -1
    large = False
    pos = start
    while pos < end:
        number, wire_type, body, stop = field(data, pos, end)
        if number == OP_ARG and wire_type == LENGTH_DELIMITED:
            arg_index += 1
            split = _arg_lists(data, (pos, stop), body, stop)
            if split is not None:
                plan.append((arg_index, split))
                large = True
                pos = stop
                continue
        plan.append((pos, stop))
        pos = stop
    return plan if large else None


def _field_bytes(number: int, payload: bytes | int) -> bytes:
    """A length-delimited field's key and length, followed by ``payload`` (or only its length)."""
    size = payload if isinstance(payload, int) else len(payload)
    head = key(number, LENGTH_DELIMITED) + varint(size)
    return head if isinstance(payload, int) else head + payload


def _complete_op(
    plan: _OpPlan, data: Buffer, start: int, end: int
) -> tuple[Buffer, list[tuple[int, str, np.ndarray]]]:
    """The op's bytes with each large float list as one packed field, and its large lists.

    The op's own bytes serve where every large float list already is one packed field; otherwise
    the op is written anew, the floats gathered once into it.
    """
    splits = [(index, split) for index, split in plan if isinstance(split, _ArgLists)]
    lists = [(index, "ints", split.ints) for index, split in splits if split.ints is not None]
    floats = [(index, split.packed) for index, split in splits if split.floats]
    if all(view is not None for _, view in floats):
        lists.extend((index, "floats", view) for index, view in floats if view is not None)
        return memoryview(data)[start:end], lists
    pieces: list[bytes | tuple[int, _ArgLists]] = []
    for first, second in plan:
        if not isinstance(second, _ArgLists) or not second.floats:
            span = second.span if isinstance(second, _ArgLists) else (first, second)
            pieces.append(bytes(data[span[0] : span[1]]))
            continue
        others = second.body(data, ("floats",))
        floats_head = _field_bytes(ARG_FLOATS, 4 * second.float_count)
        arg_size = len(others) + len(floats_head) + 4 * second.float_count
        pieces.append(_field_bytes(OP_ARG, arg_size) + others + floats_head)
        pieces.append((first, second))
    size = sum(len(p) if isinstance(p, bytes) else 4 * p[1].float_count for p in pieces)
    out = empty_buffer(size)
    offset = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            out[offset : offset + len(piece)] = piece
            offset += len(piece)
            continue
        index, split = piece
        target = np.frombuffer(out, dtype="<f4", count=split.float_count, offset=offset)
        _gather(split.floats, target)
        lists.append((index, "floats", target))
        offset += target.nbytes
    return out[:offset], lists


def _detached_op(plan: _OpPlan, data: Buffer) -> tuple[bytes, list[tuple[int, str, _List]], bool]:
    """The op's bytes without its large lists, those lists, and whether any is a view of data.

    A packed float list is a view of ``data``; other float lists are the chunks to gather.
    """
    pieces: list[bytes] = []
    lists: list[tuple[int, str, _List]] = []
    views = False
    for first, second in plan:
        if not isinstance(second, _ArgLists):
            pieces.append(bytes(data[first:second]))
            continue
        taken = second.taken()
        pieces.append(_field_bytes(OP_ARG, second.body(data, taken)))
        if second.ints is not None:
            lists.append((first, "ints", second.ints))
        if second.floats:
            view = second.packed
            views = views or view is not None
            lists.append((first, "floats", second.floats if view is None else view))
    return b"".join(pieces), lists, views


#: A large list: its values, or the chunks of floats still to gather.
_List = np.ndarray | list[np.ndarray]
#: Threads that gather unpacked floats. Copies release the GIL and the page faults of the mapping
#: and of the new memory overlap: on two idle cores a ResNet-50 gathers in 0.07 s instead of 0.12.
_GATHER_THREADS = min(2, os.cpu_count() or 1)


def _walk(data: Buffer) -> tuple[list[bytes], list[tuple[int, int, _OpPlan | None]]]:
    """The NetDef's fields other than ops, and each op's extent and plan."""
    others: list[bytes] = []
    ops: list[tuple[int, int, _OpPlan | None]] = []
    pos, end = 0, len(data)
    while pos < end:
        number, wire_type, body, stop = field(data, pos, end)
        if number == NET_OP and wire_type == LENGTH_DELIMITED:
            ops.append((body, stop, _plan_op(data, body, stop)))
        else:
            others.append(bytes(data[pos:stop]))
        pos = stop
    if not any(plan is not None for _, _, plan in ops):
        raise WireError("no large value lists: nothing to gain")
    return others, ops


def parse_netdef_with_lists(
    data: Buffer,
) -> tuple[caffe2_pb2.NetDef, list[tuple[caffe2_pb2.Argument, str, np.ndarray]]]:
    """A NetDef parsed with its large float lists moved as packed bytes, and those lists.

    Returns the net and, for each large ``floats`` or (packed) ``ints`` list, its argument, the
    field's name and its values. ``data`` is only read.

    Raises:
        WireError: the bytes are not what this fast path handles (or not a NetDef at all); parse
            them with protobuf instead.
        DecodeError: protobuf refuses an op's other fields; it would refuse the whole net too.
    """
    others, ops = _walk(data)
    view = memoryview(data)
    net = caffe2_pb2.NetDef()
    found: list[tuple[caffe2_pb2.Argument, str, np.ndarray]] = []
    for body, stop, plan in ops:
        op = net.op.add()
        if plan is None:
            op.MergeFromString(view[body:stop])
            continue
        op_bytes, lists = _complete_op(plan, data, body, stop)
        op.MergeFromString(op_bytes)
        found.extend((op.arg[index], field, values) for index, field, values in lists)
    net.MergeFromString(b"".join(others))
    return net, found


#: Large lists left out of a detached NetDef: (op index, arg index) -> (field name, values).
Detached = dict[tuple[int, int], tuple[str, np.ndarray]]


def parse_netdef_detached(
    data: Buffer, release: Callable[[int, int], None] | None = None
) -> tuple[caffe2_pb2.NetDef, Detached]:
    """A NetDef parsed without its large lists, which are returned beside it as arrays.

    Each weight is copied at most once: packed float lists are views of ``data``, unpacked ones
    are gathered into new memory, and protobuf never holds them. The net alone is incomplete: its
    ``floats``/``ints`` fields of those arguments are empty. ``release(start, stop)`` is called
    for each op's bytes once its unpacked floats are gathered and nothing views them.

    Raises:
        WireError, DecodeError: as :func:`parse_netdef_with_lists`.
    """
    others, ops = _walk(data)
    view = memoryview(data)
    net = caffe2_pb2.NetDef()
    detached: Detached = {}
    # Per op with floats to gather: its index, the bytes to release after, and its chunks.
    gathers: list[tuple[int, tuple[int, int] | None, list[tuple[int, list[np.ndarray]]]]] = []
    for op_index, (body, stop, plan) in enumerate(ops):
        op = net.op.add()
        if plan is None:
            op.MergeFromString(view[body:stop])
            continue
        op_bytes, lists, views = _detached_op(plan, data)
        op.MergeFromString(op_bytes)
        chunks = []
        for arg_index, field_name, values in lists:
            if isinstance(values, list):
                chunks.append((arg_index, values))
            else:
                detached[op_index, arg_index] = (field_name, values)
        span = None if views else (body, stop)
        if chunks:
            gathers.append((op_index, span, chunks))
        elif release is not None and span is not None:
            release(*span)

    def gather(job: tuple[int, tuple[int, int] | None, list[tuple[int, list[np.ndarray]]]]) -> None:
        op_index, span, chunks = job
        for arg_index, floats in chunks:
            detached[op_index, arg_index] = ("floats", _gather(floats))
        if release is not None and span is not None:
            release(*span)

    if _GATHER_THREADS > 1 and len(gathers) > 1:
        with ThreadPoolExecutor(_GATHER_THREADS) as pool:
            for _ in pool.map(gather, gathers):  # re-raises a WireError of any op
                pass
    else:
        for job in gathers:
            gather(job)
    net.MergeFromString(b"".join(others))
    return net, detached


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


def write_netdef_stream(
    net: caffe2_pb2.NetDef,
    handle: BinaryIO,
    cached: CachedValues,
    detached: Detached | None = None,
) -> None:
    """Writes ``net`` serialized to ``handle``, each value list that ``cached`` gives packed.

    ``detached`` holds lists left out of ``net``'s messages, by (op index, arg index); they are
    written packed in their arguments. Ops are serialized and written one at a time, so that the
    file's bytes are never all in memory at once.
    """
    header = _without(net, "op")
    detached = detached or {}
    found = [
        [detached.get((op_index, arg_index)) or cached(arg) for arg_index, arg in enumerate(op.arg)]
        for op_index, op in enumerate(net.op)
    ]
    if header is None or not any(any(op_found) for op_found in found):
        handle.write(net.SerializeToString())
        return
    handle.write(header.SerializeToString())
    for op, op_found in zip(net.op, found, strict=True):
        parts = _op_parts(op, op_found)
        handle.write(key(NET_OP, LENGTH_DELIMITED) + varint(sum(len(part) for part in parts)))
        for part in parts:
            handle.write(part)
