"""Fast reading and writing of the large ``floats``/``ints`` lists of GivenTensor*Fill arguments.

A ResNet-50's weights are 25 million floats; moving them through protobuf's Python containers one
element at a time costs seconds, and even protobuf's C parser and serializer handle Caffe2's
unpacked ``repeated float`` a 5-byte record at a time. So values go into an Argument as one packed
field merged from bytes (every protobuf parser accepts packed encoding for a repeated scalar), and
the array they came from is kept beside the message until it is read (``get_floats``) or written
(``netdef.write_netdef``, through ``wire.py``): neither then asks protobuf for the values again.

The arrays kept are checked against the message when used (its wrapper object, the count and a few
values), and without one, values are read back by serializing the field and viewing it with numpy.
Arrays read from a file are dropped with the NetDef they belong to (at the next garbage collection);
arrays of a net being built are dropped when written, when a later net's are written, or beyond
``_PENDING_LIMIT`` bytes.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.wire import (
    ARG_INTS,
    FAST_MIN,
    FLOAT_KEY,
    LENGTH_DELIMITED,
    UNPACKED_FLOAT,
    key,
    packed_floats,
    varint,
    varints,
)

#: Bytes of arrays kept for nets being built and not yet written; older ones beyond are dropped.
_PENDING_LIMIT = 1 << 30
#: References to an owning NetDef when only the cache holds it: its dict, the loop, getrefcount.
_UNOWNED_REFS = 3


@dataclass
class _Kept:
    """One argument's values, kept beside it."""

    arg: caffe2_pb2.Argument  # the wrapper object itself: while held, protobuf hands back this one
    field: str
    values: np.ndarray
    owner: int | None  # id() of the NetDef read from a file, None for a net being built


class _ValueCache:
    """Arrays of the values in Argument messages, by the message wrapper's identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[int, _Kept] = {}
        self._owners: dict[int, tuple[caffe2_pb2.NetDef, set[int]]] = {}
        self._pending: OrderedDict[int, int] = OrderedDict()  # id(arg) -> nbytes, oldest first
        self._pending_bytes = 0

    def keep_built(self, arg: caffe2_pb2.Argument, field: str, values: np.ndarray) -> None:
        with self._lock:
            self._drop(id(arg))
            self._kept[id(arg)] = _Kept(arg, field, values, None)
            self._pending[id(arg)] = values.nbytes
            self._pending_bytes += values.nbytes
            while self._pending_bytes > _PENDING_LIMIT:
                self._drop(next(iter(self._pending)))

    def keep_read(
        self, net: caffe2_pb2.NetDef, found: list[tuple[caffe2_pb2.Argument, str, np.ndarray]]
    ) -> None:
        with self._lock:
            self._drop_unowned()
            ids = set()
            # An argument with both lists keeps its floats, which the frontend reads first.
            for arg, field, values in sorted(found, key=lambda entry: entry[1] != "floats"):
                if id(arg) in self._kept:
                    continue
                self._kept[id(arg)] = _Kept(arg, field, values, id(net))
                ids.add(id(arg))
            if ids:
                self._owners[id(net)] = (net, ids)

    def take(
        self, arg: caffe2_pb2.Argument, field: str | None = None, *, drop_older: bool = False
    ) -> _Kept | None:
        """The values kept for ``arg``, if they still match it; forgotten once taken.

        ``drop_older`` also forgets the arrays of nets built before ``arg``'s: a net is written
        after the nets built before it, or never (an export kept in memory).
        """
        with self._lock:
            self._drop_unowned()
            kept = self._kept.get(id(arg))
            if kept is None or kept.arg is not arg or (field is not None and kept.field != field):
                return None
            if drop_older and kept.owner is None:
                while (oldest := next(iter(self._pending))) != id(arg):
                    self._drop(oldest)
            self._drop(id(arg))
        return kept if _matches(getattr(arg, kept.field), kept.values) else None

    def _drop(self, arg_id: int) -> None:
        kept = self._kept.pop(arg_id, None)
        if kept is None:
            return
        if kept.owner is None:
            self._pending_bytes -= self._pending.pop(arg_id)
        elif kept.owner in self._owners:
            ids = self._owners[kept.owner][1]
            ids.discard(arg_id)
            if not ids:
                del self._owners[kept.owner]

    def after_collection(self, phase: str, info: dict[str, int]) -> None:
        """A garbage-collector callback: forgets the arrays of nets dropped since the last one.

        Dropping a NetDef triggers nothing here (protobuf messages take no weak references), and
        the arrays kept for it hold the file's bytes; the collector runs often enough.
        """
        if phase == "stop" and self._owners and self._lock.acquire(blocking=False):
            try:
                self._drop_unowned()
            finally:
                self._lock.release()

    def _drop_unowned(self) -> None:
        """Forgets the arrays of nets that nobody holds any more."""
        for owner_id, (net, ids) in list(self._owners.items()):
            if sys.getrefcount(net) <= _UNOWNED_REFS:
                for arg_id in list(ids):
                    self._drop(arg_id)
                self._owners.pop(owner_id, None)
            del net


_CACHE = _ValueCache()
gc.callbacks.append(_CACHE.after_collection)


def _matches(container: object, values: np.ndarray) -> bool:
    """Whether a protobuf repeated field still holds ``values``: its size and a few samples."""
    count = values.size
    if len(container) != count:  # type: ignore[arg-type]
        return False
    for index in {0, count // 4, count // 2, 3 * count // 4, count - 1}:
        held = container[index]  # type: ignore[index]
        value = values[index].item()
        if held != value and not (math.isnan(held) and math.isnan(value)):
            return False
    return True


# -- the codec ----------------------------------------------------------------------------------
def set_floats(arg: caffe2_pb2.Argument, values: np.ndarray) -> None:
    """Appends ``values`` (as float32) to ``arg.floats``."""
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    if flat.size < FAST_MIN:
        arg.floats.extend(flat.tolist())
        return
    field, view = packed_floats(flat)
    appending = len(arg.floats) > 0  # then a kept array would hold only part of the list
    arg.MergeFromString(field)
    if not appending:
        # A read-only source (an IR weight) cannot change before it is written: keep it rather
        # than the packed copy, which then goes, sparing a third copy of every weight.
        kept = flat if not flat.flags.writeable else view
        del field, view
        kept.flags.writeable = False
        _CACHE.keep_built(arg, "floats", kept)


def set_ints(arg: caffe2_pb2.Argument, values: np.ndarray) -> None:
    """Appends ``values`` (as int64) to ``arg.ints``."""
    flat = np.asarray(values).astype(np.int64).reshape(-1)
    if flat.size < FAST_MIN:
        arg.ints.extend(flat.tolist())
        return
    payload = varints(flat)
    appending = len(arg.ints) > 0
    arg.MergeFromString(key(ARG_INTS, LENGTH_DELIMITED) + varint(len(payload)) + payload)
    if not appending:
        flat.flags.writeable = False
        _CACHE.keep_built(arg, "ints", flat)


def get_floats(arg: caffe2_pb2.Argument) -> np.ndarray:
    """``arg.floats`` as a float32 array, which may be read-only."""
    count = len(arg.floats)
    if count < FAST_MIN:
        return np.asarray(arg.floats, dtype=np.float32)
    kept = _CACHE.take(arg, "floats")
    if kept is not None:
        return kept.values
    # Fields serialize in field-number order; only the floats, as unpacked fixed32, are wanted.
    only = caffe2_pb2.Argument()
    only.floats.MergeFrom(arg.floats)
    data = only.SerializeToString()
    if len(data) == count * UNPACKED_FLOAT.itemsize:
        records = np.frombuffer(data, dtype=UNPACKED_FLOAT)
        if (records["key"] == FLOAT_KEY).all():
            return records["value"].astype(np.float32)
    return np.asarray(arg.floats, dtype=np.float32)


def get_ints(arg: caffe2_pb2.Argument) -> np.ndarray:
    """``arg.ints`` as an int64 array, which may be read-only."""
    if len(arg.ints) >= FAST_MIN:
        kept = _CACHE.take(arg, "ints")
        if kept is not None:
            return kept.values
    return np.asarray(arg.ints, dtype=np.int64)


# -- for netdef.py ------------------------------------------------------------------------------
def keep_read(
    net: caffe2_pb2.NetDef, found: list[tuple[caffe2_pb2.Argument, str, np.ndarray]]
) -> None:
    """Keeps the arrays that ``wire.parse_netdef_with_lists`` found in ``net``, for the getters."""
    _CACHE.keep_read(net, found)


def take_for_writing(arg: caffe2_pb2.Argument) -> tuple[str, np.ndarray] | None:
    """The values kept for ``arg`` as (field name, array), forgetting them; None where none."""
    if len(arg.floats) < FAST_MIN and len(arg.ints) < FAST_MIN:
        return None
    kept = _CACHE.take(arg, drop_older=True)
    return None if kept is None else (kept.field, kept.values)
