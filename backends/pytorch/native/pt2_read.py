"""Reading a ``.pt2`` archive with ``torch.export.load``, its weights mapped, not copied.

Two costs of torch 2.13's reader that a conversion pays and gains nothing from (issue #15: at
1B parameters, a third of ``torch.export.load``'s time each):

- **Weights copied**: every weight record is read from the zip into a new buffer
  (``PyTorchFileReader.get_storage_from_record``), a copy of the whole model held in anonymous
  memory. The records are stored uncompressed and aligned (torch's writer, and unframe's
  ``backends/pytorch/native/pt2_zip.py``), so :func:`mapped_pt2_weights` maps them from the file
  instead, copy-on-write (``mmap.ACCESS_COPY``): the file is never written through, and a weight
  no one reads never leaves the disk. A record that is compressed, or whose size is not the
  tensor's, is read torch's way.
- **Schema types looked up per object**: the program's JSON becomes torch's schema dataclasses
  through ``_dict_to_dataclass``, which calls ``typing.get_type_hints`` on the class of every
  object it builds (20,926 calls for a 1B LLaMA, 1.6 s under a profiler).
  :func:`cached_schema_type_hints` answers each class's hints once per load. Both fixes belong in
  torch (``_package._build_file_map``, ``serialize._dict_to_dataclass``).

The mapping stays open for as long as a tensor made from it lives (``torch.frombuffer`` holds it);
like any mapped file, the source must not be truncated while the model is in use.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
import threading
import types
import typing
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import torch

# The local file header's fixed part: signature ... name length, extra length (APPNOTE 4.3.7).
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"

_PATCH_LOCK = threading.RLock()


class _Record(typing.NamedTuple):
    header_offset: int
    size: int
    stored: bool


class _MappedRecords:
    """torch's ``PyTorchFileReader`` of one archive, its weight records read from a mapping."""

    def __init__(self, reader: Any, records: dict[str, _Record], mapping: mmap.mmap) -> None:
        self._reader = reader
        self._records = records
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def get_storage_from_record(self, name: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
        offset = self._data_offset(name, numel * dtype.itemsize)
        if offset is None:
            return self._reader.get_storage_from_record(name, numel, dtype)
        return torch.frombuffer(self._mapping, dtype=dtype, count=numel, offset=offset)

    def _data_offset(self, name: str, nbytes: int) -> int | None:
        record = self._records.get(name)
        if record is None or not record.stored or record.size != nbytes or nbytes == 0:
            return None
        start = record.header_offset
        header = self._mapping[start : start + _LOCAL_HEADER.size]
        if len(header) != _LOCAL_HEADER.size:
            return None
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        offset = start + _LOCAL_HEADER.size + name_length + extra_length
        if signature != _LOCAL_SIGNATURE or offset + nbytes > len(self._mapping):
            return None
        return offset


def _records(file: IO[bytes]) -> dict[str, _Record]:
    """The archive's members by the name torch's reader gives them (its top folder dropped)."""
    file.seek(0)
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
    records = {}
    for member in members:
        _, slash, name = member.filename.partition("/")
        if slash:
            stored = member.compress_type == zipfile.ZIP_STORED
            records[name] = _Record(member.header_offset, member.file_size, stored)
    return records


@contextlib.contextmanager
def mapped_pt2_weights(file: IO[bytes]) -> Iterator[None]:
    """Within the block, ``torch.export.load(file)`` maps the weights of ``file``'s archive.

    Only torch's reader of ``file`` itself (the object given to ``torch.export.load``) is
    changed. Where the file is not a zip archive or cannot be mapped, torch reads it as it does
    without this.
    """
    from torch.export.pt2_archive import _package

    try:
        records = _records(file)
        file.seek(0)
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        # Not a zip (torch says why, in its words), or no mapping (address space, a file system
        # without mmap): torch reads the file as it would without this.
        file.seek(0)
        yield
        return
    real_init = _package.PT2ArchiveReader.__init__

    def init(reader: Any, archive: Any) -> None:
        real_init(reader, archive)
        if archive is file:
            reader.archive_file = _MappedRecords(reader.archive_file, records, mapping)

    with _PATCH_LOCK:
        _package.PT2ArchiveReader.__init__ = init  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            _package.PT2ArchiveReader.__init__ = real_init  # type: ignore[method-assign]


class _TypingWithCachedHints(types.ModuleType):
    """``typing`` as torch's serializer sees it, ``get_type_hints`` answered once per class."""

    def __init__(self) -> None:
        super().__init__("typing")
        # typing's names read straight from here (get_origin, Union, ...), not through getattr.
        self.__dict__.update({k: v for k, v in vars(typing).items() if not k.startswith("__")})
        del self.__dict__["get_type_hints"]
        self._hints: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(typing, name)

    def get_type_hints(
        self,
        obj: Any,
        globalns: dict[str, Any] | None = None,
        localns: dict[str, Any] | None = None,
        include_extras: bool = False,
    ) -> dict[str, Any]:
        # The namespaces live as long as the block (torch passes its schema module's vars).
        key = (obj, id(globalns), id(localns), include_extras)
        try:
            return self._hints[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable annotation holder: nothing to cache
            return typing.get_type_hints(obj, globalns, localns, include_extras)
        hints = typing.get_type_hints(obj, globalns, localns, include_extras)
        self._hints[key] = hints
        return hints


@contextlib.contextmanager
def cached_schema_type_hints() -> Iterator[None]:
    """Within the block, torch's schema deserializer looks each class's type hints up once."""
    from torch._export.serde import serialize

    with _PATCH_LOCK:
        real = serialize.typing
        serialize.typing = _TypingWithCachedHints()  # type: ignore[assignment]
        try:
            yield
        finally:
            serialize.typing = real


@contextlib.contextmanager
def pt2_load_faster(file: IO[bytes]) -> Iterator[None]:
    """Within the block, ``torch.export.load(file)`` maps ``file``'s weights and looks each schema
    class's type hints up once (:func:`mapped_pt2_weights`, :func:`cached_schema_type_hints`)."""
    with mapped_pt2_weights(file), cached_schema_type_hints():
        yield
