"""``torch.export.save`` writing each weight straight from its storage, through our zip writer.

torch (2.13) packs a ``.pt2``'s weights by copying each storage into a new ``bytes`` object
(``pt2_archive._package._get_raw_tensor_bytes``), which ``PT2ArchiveWriter.write_bytes`` then
hands to its zip writer (``torch._C.PyTorchFileWriter``), which computes each record's CRC32 on
the writing thread: one extra pass over every weight's bytes for the copy, one for the CRC. For
the duration of a save, CPU tensors go to the writer as their storage, written from their own
memory (for a weight mapped from an ``.onnx`` file, that file's pages), and a file path gets
``pt2_zip.Pt2ZipWriter``, which lays the archive out as torch's writer does and computes the CRCs
on a second thread while it writes. ``torch.export.save`` still decides everything else (record
names, order, contents). Both belong in torch; they are made here first, around one call.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from unframe.backends.pytorch.native.pt2_zip import ARCHIVE_FILE_METHODS, Pt2ZipWriter

__all__ = ["weights_written_from_storage"]


class _StorageRecord:
    """What ``_get_raw_tensor_bytes`` returns instead of a copy: the storage to write."""

    __slots__ = ("storage",)

    def __init__(self, storage: torch.UntypedStorage) -> None:
        self.storage = storage


@functools.cache
def _writer_methods_known(writer: type) -> bool:
    """Whether ``PT2ArchiveWriter`` calls only the ``archive_file`` methods ours has."""
    try:  # method by method: torch sets the class's __module__ to the package, not its file
        source = "".join(
            inspect.getsource(method) for method in vars(writer).values() if callable(method)
        )
    except (OSError, TypeError):  # pragma: no cover - torch installed without its sources
        return False
    called = set(re.findall(r"\barchive_file\.(\w+)", source))
    return bool(called) and called <= ARCHIVE_FILE_METHODS


#: Held while torch's module is patched: two threads saving at once would otherwise each restore
#: what the other installed, and leave one patch in place for good.
_PATCHING = threading.RLock()


@contextmanager
def weights_written_from_storage(*, own_writer: bool = True) -> Iterator[None]:
    """Within the block, ``torch.export.save`` writes CPU weights from their storage.

    With ``own_writer`` (and a file path to save to), the archive is written by ``Pt2ZipWriter``
    instead of torch's zip writer. Where torch's private functions are not as expected (another
    version), nothing is changed, or only what still fits, and saving goes its own way. Saves in
    other threads wait until the block ends.
    """
    with _PATCHING, _patched(own_writer):
        yield


@contextmanager
def _patched(own_writer: bool) -> Iterator[None]:
    try:
        from torch.export.pt2_archive import _package
    except ImportError:  # pragma: no cover - another torch layout
        yield
        return
    original_bytes = getattr(_package, "_get_raw_tensor_bytes", None)
    archive_writer = getattr(_package, "PT2ArchiveWriter", None)
    is_fake = getattr(_package, "_is_fake_tensor", None)
    if (
        original_bytes is None
        or not isinstance(archive_writer, type)
        or not hasattr(archive_writer, "write_bytes")
        or is_fake is None
    ):
        yield  # pragma: no cover - another torch version
        return
    ours = own_writer and _writer_methods_known(archive_writer)

    def raw_bytes(value: torch.Tensor) -> Any:
        if is_fake(value) or value.device.type != "cpu" or not value.data_ptr():
            return original_bytes(value)
        return _StorageRecord(value.untyped_storage())

    class Writer(archive_writer):  # type: ignore[misc,valid-type]
        """torch's ``PT2ArchiveWriter``, with our zip writer for a path and storages taken."""

        def __init__(self, archive: Any) -> None:
            if not (ours and isinstance(archive, (str, os.PathLike))):
                super().__init__(archive)
                return
            self.archive_file = Pt2ZipWriter(os.fspath(archive))
            self.archive_file.set_min_version(6)  # as torch's __init__ sets its writer

        def __exit__(self, kind: Any, *rest: Any) -> None:
            zip_writer = self.archive_file if isinstance(self.archive_file, Pt2ZipWriter) else None
            if kind is not None and zip_writer is not None:
                zip_writer.abort()  # torch's would finish a valid-looking, incomplete archive
                return
            try:
                super().__exit__(kind, *rest)
            except BaseException:
                if zip_writer is not None:
                    zip_writer.abort()
                raise

        def write_bytes(self, name: str, data: Any) -> None:
            if isinstance(data, _StorageRecord):
                self.archive_file.write_record(name, data.storage, data.storage.nbytes())
                return
            super().write_bytes(name, data)

    Writer.__name__ = Writer.__qualname__ = archive_writer.__name__
    package: Any = _package  # torch's module, its names rebound for the length of the block
    package._get_raw_tensor_bytes = raw_bytes  # noqa: SLF001
    package.PT2ArchiveWriter = Writer
    try:
        yield
    finally:
        package._get_raw_tensor_bytes = original_bytes  # noqa: SLF001
        package.PT2ArchiveWriter = archive_writer
