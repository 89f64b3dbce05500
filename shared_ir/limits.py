"""Safety limits on what an input may declare, checked before anything is allocated.

A model file is small; what it declares need not be: a 16-byte initializer may claim 10^12
elements, a fill op a 50000 x 50000 output. Sizes are computed here with Python integers (no
overflow on a shape of 2^32 x 2^32) and compared with one limit the user can raise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from unframe.shared_ir.errors import BadInputError, LimitExceededError

#: The environment variable that overrides :data:`DEFAULT_MAX_TENSOR_BYTES` (a byte count).
MAX_TENSOR_BYTES_ENV = "UNFRAME_MAX_TENSOR_BYTES"
#: Larger than any single weight of today's public models (a 256k x 8k float32 embedding is
#: 8 GiB), smaller than what a typo or a hostile file would make us allocate.
DEFAULT_MAX_TENSOR_BYTES = 16 << 30


def max_tensor_bytes() -> int:
    """The most bytes one tensor may declare: ``$UNFRAME_MAX_TENSOR_BYTES`` or the default."""
    text = os.environ.get(MAX_TENSOR_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_TENSOR_BYTES
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = -1
    if value <= 0:
        raise BadInputError(
            f"{MAX_TENSOR_BYTES_ENV}={text!r} is not a positive whole number of bytes",
            hint=f"unset it to use the default of {DEFAULT_MAX_TENSOR_BYTES} bytes",
        )
    return value


def declared_bytes(dims: Iterable[int], bitwidth: int) -> int:
    """Bytes a tensor of ``dims`` holds at ``bitwidth`` bits an element (sub-byte types packed).

    Raises ``ValueError`` for a negative dimension.
    """
    count = 1
    for dim in dims:
        dim = int(dim)
        if dim < 0:
            raise ValueError(f"negative dimension {dim}")
        count *= dim
    return (count * bitwidth + 7) // 8


def check_tensor_bytes(nbytes: int, *, what: str, path: str | None = None) -> None:
    """Raises :class:`LimitExceededError` when ``what`` declares more than the limit allows."""
    limit = max_tensor_bytes()
    if nbytes > limit:
        raise LimitExceededError(
            f"{what} declares {_human(nbytes)}, over the limit of {_human(limit)} "
            f"({limit} bytes) for one tensor",
            path=path,
            hint=f"set {MAX_TENSOR_BYTES_ENV} to a larger byte count if the model really is "
            "that large",
        )


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{nbytes} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
