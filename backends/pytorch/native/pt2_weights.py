"""``torch.export.save`` writing each weight straight from its storage, not through a copy.

torch (2.13) packs a ``.pt2``'s weights by copying each storage into a new ``bytes`` object
(``pt2_archive._package._get_raw_tensor_bytes``), which ``PT2ArchiveWriter.write_bytes`` then
hands to the zip writer: one extra pass over every weight's bytes, and the largest weight held
twice. The zip writer itself takes a storage (``torch.save`` passes it one); here, for the
duration of a save, CPU tensors go to it that way, written from their own memory (for a weight
mapped from an ``.onnx`` file, that file's pages). The fix belongs in torch's ``_package.py``;
it is made here first, around one call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["weights_written_from_storage"]


class _StorageRecord:
    """What ``_get_raw_tensor_bytes`` returns instead of a copy: the storage to write."""

    __slots__ = ("storage",)

    def __init__(self, storage: torch.UntypedStorage) -> None:
        self.storage = storage


@contextmanager
def weights_written_from_storage() -> Iterator[None]:
    """Within the block, ``torch.export.save`` writes CPU weights from their storage.

    Where torch's private functions are not as expected (another version), nothing is changed
    and saving goes its own way.
    """
    try:
        from torch.export.pt2_archive import _package
    except ImportError:  # pragma: no cover - another torch layout
        yield
        return
    original_bytes = getattr(_package, "_get_raw_tensor_bytes", None)
    writer = getattr(_package, "PT2ArchiveWriter", None)
    original_write = getattr(writer, "write_bytes", None)
    is_fake = getattr(_package, "_is_fake_tensor", None)
    if original_bytes is None or writer is None or original_write is None or is_fake is None:
        yield  # pragma: no cover - another torch version
        return

    def raw_bytes(value: torch.Tensor) -> Any:
        if is_fake(value) or value.device.type != "cpu" or not value.data_ptr():
            return original_bytes(value)
        return _StorageRecord(value.untyped_storage())

    def write_bytes(self: Any, name: str, data: Any) -> None:
        if isinstance(data, _StorageRecord):
            self.archive_file.write_record(name, data.storage, data.storage.nbytes())
            return
        original_write(self, name, data)

    _package._get_raw_tensor_bytes = raw_bytes  # noqa: SLF001
    writer.write_bytes = write_bytes
    try:
        yield
    finally:
        _package._get_raw_tensor_bytes = original_bytes  # noqa: SLF001
        writer.write_bytes = original_write
