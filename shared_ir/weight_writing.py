"""Writing weights at disk speed: contiguous chunks of bounded size, never a whole-model copy.

onnx_ir writes each tensor of external data with ``ndarray.tofile``, which on a non-contiguous
array (the transposed views torch.onnx's optimizer leaves for folded initializers) goes element by
element, about five times slower than writing the same bytes. Here such an array is copied a
bounded block of rows at a time into one reused contiguous buffer and written from it. The fix
belongs in onnx_ir's ``Tensor.tofile``; it is made here first, around ``ir.save``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np
import onnx_ir as ir

#: At most this many bytes are copied at once when a non-contiguous array is written.
CHUNK_BYTES = 64 << 20

#: Threads writing one external-data file (onnx_ir's parallel writer, ``ir.save(max_workers=)``):
#: one copies a transposed weight into its buffer while the other writes (both release the GIL).
#: Each holds at most one ``CHUNK_BYTES`` buffer. 256 MiB, half transposed: 0.5-1.2x ``np.save``
#: against 2.1-4.2x with one writer (``benchmarks/scale.py weights``).
WRITE_WORKERS = 2


def write_array(array: np.ndarray, file: BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Writes ``array``'s bytes in C order to ``file``, copying at most ``chunk_bytes`` at once.

    A contiguous array is written straight from its memory. Otherwise blocks of rows (of the
    first axis) go through one buffer of at most ``chunk_bytes`` (or one row, where a row is
    larger).
    """
    if array.flags.c_contiguous or array.ndim == 0:
        file.write(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
        return
    rows = len(array)
    if rows == 0:
        return
    rows_per_chunk = max(1, min(rows, chunk_bytes // max(1, array[0].nbytes)))
    buffer = np.empty((rows_per_chunk, *array.shape[1:]), dtype=array.dtype)
    for start in range(0, rows, rows_per_chunk):
        part = array[start : start + rows_per_chunk]
        block = buffer[: len(part)]
        _copy_into(block, part)
        file.write(block.reshape(-1).view(np.uint8).data)


#: Side of the square tiles a 2-D transposing copy goes through (128 x 128 x 4 bytes fits L2).
_TILE = 128


def _copy_into(block: np.ndarray, part: np.ndarray) -> None:
    """``block[...] = part``, fast where ``part`` is transposed.

    numpy copies a transposed array with strided reads across the whole of it (12x slower than
    a contiguous copy here); torch's blocked copy, used where a torch conversion has already
    imported it (PyTorch -> ONNX, where the transposed views come from), is 6x faster than that,
    and numpy in cache-sized tiles 2.5x.
    """
    torch = sys.modules.get("torch")
    if torch is not None and all(stride >= 0 for stride in part.strides):
        # Same-width signed integers: bit-exact for every dtype, ml_dtypes' included.
        same_width = np.dtype(f"i{part.dtype.itemsize}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns that a read-only array is not writable
            source = torch.from_numpy(part.view(same_width))
        torch.from_numpy(block.view(same_width)).copy_(source)
        return
    if part.ndim != 2:
        np.copyto(block, part)
        return
    rows, columns = part.shape
    for row in range(0, rows, _TILE):
        for column in range(0, columns, _TILE):
            tile = (slice(row, row + _TILE), slice(column, column + _TILE))
            block[tile] = part[tile]


class _ChunkWrittenTensor(ir.Tensor):
    """A tensor over a non-contiguous array whose ``tofile`` goes through ``write_array``."""

    def tofile(self, file: Any) -> None:
        write_array(self.numpy(), file)


def _needs_chunked_writing(tensor: ir.TensorProtocol | None) -> bool:
    if type(tensor) is not ir.Tensor and not isinstance(tensor, _ChunkWrittenTensor):
        return False  # subclasses (torch-backed, mapped) write their own way
    assert isinstance(tensor, ir.Tensor)
    raw = tensor.raw
    return (
        sys.byteorder == "little"
        and isinstance(raw, np.ndarray)
        and not raw.flags.c_contiguous
        and raw.dtype.isnative
        and tensor.dtype != ir.DataType.STRING
        and tensor.dtype.bitwidth >= 8
    )


@contextmanager
def chunk_written_weights(model: ir.Model) -> Iterator[None]:
    """Within the block, ``model``'s non-contiguous initializers write in bounded chunks.

    Their ``const_value`` is swapped for a tensor over the same array (no copy) and put back on
    leaving, so the caller's model is unchanged.
    """
    swapped: list[tuple[ir.Value, ir.TensorProtocol]] = []
    try:
        for graph in model.graphs():
            for value in graph.initializers.values():
                tensor = value.const_value
                if tensor is None or not _needs_chunked_writing(tensor):
                    continue
                assert isinstance(tensor, ir.Tensor)
                value.const_value = _ChunkWrittenTensor(
                    tensor.raw,
                    dtype=tensor.dtype,
                    shape=tensor.shape,
                    name=tensor.name,
                    doc_string=tensor.doc_string,
                    metadata_props=dict(tensor.metadata_props) or None,
                )
                swapped.append((value, tensor))
        yield
    finally:
        for value, tensor in swapped:
            value.const_value = tensor
