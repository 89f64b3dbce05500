"""A ``.pt2`` zip writer: torch's record layout, each CRC32 computed while the data is written.

torch's own writer (``torch._C.PyTorchFileWriter``, miniz) computes every record's CRC32 inline on
the writing thread: for a weight, a pass over its bytes as long as the write itself, so a ``.pt2``
took about twice the time of ``np.save`` of the same bytes. Here a second thread computes a
record's CRC32 (releasing the GIL) while this one writes it, and the CRC goes into a data
descriptor after the data, as torch's writer puts it. The CRC32 is ISA-L's (the ``isal``
package, an install requirement of the PyTorch backend, pinned in constraints.txt: carry-less
multiplication, ~26 GB/s here against zlib 1.2.13's ~4 GB/s; zlib's where it is missing), so that
on a machine with no free core the CRC still costs a fraction of the write. The file is laid out as torch lays it out (records under
``<archive name>/``, stored, each record's data 64-byte aligned by an ``FB`` padding field so a
loader may map it, zip64 where a size or offset passes 4 GiB), and ends with the records torch's
writer adds at the end (``.data/version``, ``byteorder``, ``.data/serialization_id``). Data is
written from the caller's memory (a weight's storage, a mapped file's pages) in bounded chunks:
nothing is copied.

``Pt2ZipWriter`` has the methods ``PT2ArchiveWriter`` calls on its ``archive_file``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import sys
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ALIGNMENT", "ARCHIVE_FILE_METHODS", "Pt2ZipWriter", "archive_name", "crc32"]

#: Where each record's data starts: a multiple of this (torch's ``kFieldAlignment``).
ALIGNMENT = 64
#: The ``PyTorchFileWriter`` methods this writer has (the ones ``PT2ArchiveWriter`` calls).
ARCHIVE_FILE_METHODS = frozenset(
    {"set_min_version", "write_record", "get_all_written_records", "write_end_of_file"}
)

_CHUNK_BYTES = 64 << 20
#: Below this a record's CRC is computed inline: handing it to the other thread costs more.
_INLINE_CRC_BYTES = 1 << 20
_ZIP32_LIMIT = 0xFFFFFFFF
_ENTRY_LIMIT = 0xFFFF
_FIRST_VERSION = 3  # torch's kMinProducedFileFormatVersion
_SERIALIZATION_ID = ".data/serialization_id"

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_DESCRIPTOR = struct.Struct("<IIII")
_DESCRIPTOR64 = struct.Struct("<IIQQ")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_END = struct.Struct("<IHHHHIIH")
_FLAG_DESCRIPTOR = 0x0008
_FLAG_UTF8 = 0x0800
_DOS_DATE = 0x21  # 1980-01-01, the earliest a zip date says; the time is 00:00
_VERSION = 20
_VERSION64 = 45


@dataclass(frozen=True)
class _Entry:
    name: bytes
    offset: int
    size: int
    crc: int


def archive_name(path: str) -> str:
    """The folder torch puts every record in: the file's name without its last suffix."""
    name = os.path.basename(path)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if not stem:
        raise ValueError(f"invalid .pt2 file name: {path!r}")
    return stem


def _byte_view(data: Any, size: int) -> memoryview:
    """``data``'s first ``size`` bytes, without a copy (a storage is viewed through numpy)."""
    if isinstance(data, torch.UntypedStorage):
        if data.device.type != "cpu":
            raise ValueError(f"a .pt2 record must be in CPU memory, not on {data.device}")
        data = torch.empty(0, dtype=torch.uint8).set_(data).numpy()
    view = memoryview(data).cast("B")
    if size > view.nbytes:
        raise ValueError(f"record of {size} bytes from a buffer of {view.nbytes}")
    return view[:size]


@functools.cache
def _isal_crc32() -> Any | None:
    """ISA-L's ``crc32(data, value)`` (the zip CRC-32, as zlib's), where ``isal`` is installed."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - installed with unframe[pytorch]
        return None
    return isal_zlib.crc32


def crc32(view: memoryview, crc: int = 0) -> int:
    """The zip CRC-32 of ``view`` continued from ``crc``: ISA-L's where installed, else zlib's.

    Both release the GIL on large buffers, so the writing thread goes on meanwhile.
    """
    fast = _isal_crc32()
    if fast is None:
        return zlib.crc32(view, crc)
    return int(fast(view, crc))


def _chunked_crc32(view: memoryview, chunk_bytes: int) -> int:
    crc = 0
    for start in range(0, view.nbytes, chunk_bytes):
        crc = crc32(view[start : start + chunk_bytes], crc)
    return crc


def _hash_combine(seed: int, value: int) -> int:
    """c10::hash_combine on 64 bits, as torch combines record CRCs into the serialization id."""
    mask = (1 << 64) - 1
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & mask)) & mask


class Pt2ZipWriter:
    """Writes a zip archive as ``torch._C.PyTorchFileWriter`` does, the CRCs off this thread.

    ``zip64_limit`` is the size and offset from which zip64 fields are used (4 GiB - 1 as in
    every zip writer; lower only to exercise that layout on small files); ``chunk_bytes`` the most
    one write call takes.
    """

    def __init__(
        self, path: str, *, zip64_limit: int = _ZIP32_LIMIT, chunk_bytes: int = _CHUNK_BYTES
    ) -> None:
        self._prefix = archive_name(path) + "/"
        self._path = path
        self._zip64_limit = min(zip64_limit, _ZIP32_LIMIT)
        self._chunk_bytes = chunk_bytes
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by end or abort
        self._offset = 0
        self._entries: list[_Entry] = []
        self._written: set[str] = set()
        self._version = _FIRST_VERSION
        self._combined_crc = 0
        self._crc_thread: ThreadPoolExecutor | None = None
        self._finished = False

    # -- the PyTorchFileWriter methods -----------------------------------------------------------
    def set_min_version(self, version: int) -> None:
        self._version = max(self._version, int(version))

    def get_all_written_records(self) -> set[str]:
        return set(self._written)

    def write_record(self, name: str, data: Any, size: int) -> None:
        """Writes ``size`` bytes of ``data`` (bytes-like or a CPU ``UntypedStorage``) as ``name``."""
        if self._finished:
            raise ValueError(f"{self._path}: the archive is already finished")
        if name in self._written:
            raise ValueError(f"{self._path}: record {name!r} written twice")
        if name == _SERIALIZATION_ID:
            return  # torch's writer makes its own at the end and ignores one copied in
        self._write_entry(name, _byte_view(data, int(size)))
        self._written.add(name)

    def write_end_of_file(self) -> None:
        """The records torch's writer adds at the end, the central directory, and close."""
        if self._finished:
            return
        if not {".data/version", "version"} & self._written:
            record = ".data/version" if self._version >= 6 else "version"
            self.write_record(record, f"{self._version}\n".encode(), len(f"{self._version}\n"))
        if "byteorder" not in self._written:
            self.write_record("byteorder", sys.byteorder.encode(), len(sys.byteorder))
        self._write_entry(_SERIALIZATION_ID, memoryview(self._serialization_id()))
        self._written.add(_SERIALIZATION_ID)
        self._write_directory()
        self._finished = True
        self._close()

    # -- beyond PyTorchFileWriter ----------------------------------------------------------------
    def abort(self) -> None:
        """Stops writing and removes the unfinished file (nothing partial is left)."""
        if self._finished:
            return
        self._finished = True
        self._close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    def __del__(self) -> None:
        if not getattr(self, "_finished", True):
            self.abort()

    # -- the zip layout --------------------------------------------------------------------------
    def _write_entry(self, name: str, view: memoryview) -> None:
        encoded = (self._prefix + name).encode()
        size = view.nbytes
        offset = self._offset
        zip64 = size >= self._zip64_limit
        header = self._local_header(encoded, offset, size, zip64)
        if size == 0:  # nothing to check: no descriptor, as torch's writer does
            self._write(header)
        elif size < _INLINE_CRC_BYTES:
            crc = zlib.crc32(view)
            self._write(header + bytes(view) + self._descriptor(crc, size, zip64))
            self._combined_crc = _hash_combine(self._combined_crc, crc)
        else:
            self._write(header)
            crc = self._write_with_crc(view)
            self._write(self._descriptor(crc, size, zip64))
            self._combined_crc = _hash_combine(self._combined_crc, crc)
        self._entries.append(_Entry(encoded, offset, size, crc if size else 0))

    def _write_with_crc(self, view: memoryview) -> int:
        """Writes ``view`` in chunks while the other thread computes its CRC32; returns it."""
        if self._crc_thread is None:
            self._crc_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pt2-crc32")
        crc: Future[int] = self._crc_thread.submit(_chunked_crc32, view, self._chunk_bytes)
        try:
            for start in range(0, view.nbytes, self._chunk_bytes):
                self._write(view[start : start + self._chunk_bytes])
        except BaseException:
            crc.cancel()
            if not crc.cancelled():
                crc.exception()  # the view stays alive until the other thread is done with it
            raise
        return crc.result()

    def _local_header(self, name: bytes, offset: int, size: int, zip64: bool) -> bytes:
        flags = _FLAG_UTF8 | (_FLAG_DESCRIPTOR if size else 0)
        # The sizes and CRC follow the data (a descriptor), so the header says 0, or in a zip64
        # header 0xFFFFFFFF with the real fields (also 0 here) in its zip64 extra.
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
        recorded = _ZIP32_LIMIT if zip64 else 0
        start = offset + _LOCAL.size + len(name) + len(extra) + 4
        padding = -start % ALIGNMENT
        extra += b"FB" + struct.pack("<H", padding) + b"Z" * padding
        version = _VERSION64 if zip64 else _VERSION
        fields = (0x04034B50, version, flags, 0, 0, _DOS_DATE, 0, recorded, recorded)
        return _LOCAL.pack(*fields, len(name), len(extra)) + name + extra

    @staticmethod
    def _descriptor(crc: int, size: int, zip64: bool) -> bytes:
        layout = _DESCRIPTOR64 if zip64 else _DESCRIPTOR
        return layout.pack(0x08074B50, crc, size, size)

    def _write_directory(self) -> None:
        start = self._offset
        parts = []
        for entry in self._entries:
            big_size = entry.size >= self._zip64_limit
            big_offset = entry.offset >= self._zip64_limit
            fields = ([entry.size, entry.size] if big_size else []) + (
                [entry.offset] if big_offset else []
            )
            extra = (
                struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
            )
            flags = _FLAG_UTF8 | (_FLAG_DESCRIPTOR if entry.size else 0)
            version = _VERSION64 if fields else _VERSION
            recorded_size = _ZIP32_LIMIT if big_size else entry.size
            parts.append(
                _CENTRAL.pack(
                    0x02014B50,
                    version,
                    version,
                    flags,
                    0,
                    0,
                    _DOS_DATE,
                    entry.crc,
                    recorded_size,
                    recorded_size,
                    len(entry.name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    _ZIP32_LIMIT if big_offset else entry.offset,
                )
                + entry.name
                + extra
            )
        directory = b"".join(parts)
        end64 = start + len(directory)
        count = len(self._entries)
        # Always the zip64 end records too, as torch's writer (miniz with WRITE_ZIP64) ends.
        tail = _END64.pack(
            0x06064B50,
            _END64.size - 12,
            _VERSION64,
            _VERSION64,
            0,
            0,
            count,
            count,
            len(directory),
            start,
        )
        tail += _LOCATOR64.pack(0x07064B50, 0, end64, 1)
        tail += _END.pack(
            0x06054B50,
            0,
            0,
            min(count, _ENTRY_LIMIT),
            min(count, _ENTRY_LIMIT),
            min(len(directory), _ZIP32_LIMIT),
            min(start, _ZIP32_LIMIT),
            0,
        )
        self._write(directory + tail)

    def _serialization_id(self) -> bytes:
        """Twenty digits for the record names and twenty for their combined CRCs, as torch's."""
        names = "\0".join(sorted(self._written)).encode()
        name_hash = int.from_bytes(hashlib.blake2b(names, digest_size=8).digest(), "little")
        return f"{name_hash:020d}{self._combined_crc:020d}".encode()

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view.nbytes:
            written = self._file.write(view)
            if not written:
                raise OSError(f"{self._path}: the write made no progress")
            view = view[written:]
            self._offset += written

    def _close(self) -> None:
        if self._crc_thread is not None:
            self._crc_thread.shutdown(wait=True)
            self._crc_thread = None
        self._file.close()
