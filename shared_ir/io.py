"""Loading and saving ONNX models: external data, lazy memory-mapped weights."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.onnx_wire import load_mapped
from unframe.shared_ir.output import atomic_output as atomic_output  # kept for old callers

#: Protobuf cannot serialize one message over 2 GiB; above this total, weights go to a side file.
EXTERNAL_DATA_THRESHOLD = 1 << 30
#: Tensors smaller than this stay inline even in a model with external data (shapes, scalars).
EXTERNAL_TENSOR_MIN_BYTES = 1024


def load_onnx(path: Path) -> ir.Model:
    """Reads an ONNX model; its weights stay on disk, memory-mapped, until they are read.

    That holds for weights inside the ``.onnx`` (see ``onnx_wire``) and for external data.
    """
    if not path.exists():
        raise BadInputError("no such file", path=str(path))
    if path.is_dir():
        raise BadInputError("is a directory, not an .onnx file", path=str(path))
    if path.suffix.lower() == ".onnx":
        try:
            mapped = load_mapped(path)
        except Exception:  # noqa: BLE001 - any surprise: protobuf's own load decides and reports
            mapped = None
        if mapped is not None:
            return mapped
    try:
        return ir.load(path)
    except (
        DecodeError,
        RuntimeError,
        ValueError,
        TypeError,
        onnx.onnx_cpp2py_export.checker.ValidationError,
    ) as error:  # type: ignore[attr-defined]
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BadInputError(
            f"not a readable ONNX model ({reason})",
            path=str(path),
            hint="the file is corrupt, truncated or of another format",
        ) from None


def initializer_bytes(model: ir.Model) -> int:
    return sum(
        value.const_value.nbytes
        for value in model.graph.initializers.values()
        if value.const_value is not None
    )


def save_onnx(model: ir.Model, path: Path, *, external_data: bool | None = None) -> None:
    """Writes ``model`` to ``path``; weights go to ``<name>.data`` beside it when they are large.

    ``external_data=None`` decides by size, so models over 2 GB are always written correctly.
    """
    if external_data is None:
        external_data = initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
    if external_data:
        ir.save(
            model,
            path,
            external_data=f"{path.name}.data",
            size_threshold_bytes=EXTERNAL_TENSOR_MIN_BYTES,
        )
    else:
        ir.save(model, path)
