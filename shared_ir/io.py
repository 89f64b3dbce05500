"""Loading and saving ONNX models: external data, lazy memory-mapped weights."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from unframe.shared_ir.errors import BadInputError, UnframeError
from unframe.shared_ir.onnx_checks import check_loaded, open_regular, regular_file_size
from unframe.shared_ir.onnx_stream import save_streamed
from unframe.shared_ir.onnx_wire import load_mapped, map_external_data
from unframe.shared_ir.output import atomic_output as atomic_output  # kept for old callers
from unframe.shared_ir.weight_writing import WRITE_WORKERS, chunk_written_weights

#: Protobuf cannot serialize one message over 2 GiB; above this total, weights go to a side file.
EXTERNAL_DATA_THRESHOLD = 1 << 30
#: Tensors smaller than this stay inline even in a model with external data (shapes, scalars).
EXTERNAL_TENSOR_MIN_BYTES = 1024


def load_onnx(path: Path) -> ir.Model:
    """Reads an ONNX model; its weights stay on disk, memory-mapped, until they are read.

    That holds for weights inside the ``.onnx`` (see ``onnx_wire``) and for external data.
    Both ways of reading check the model before returning it (``onnx_checks.check_loaded``):
    external data only from the model's folder, declared sizes against the bytes present and a
    limit, the structure with ``onnx.checker``; a file that fails is refused naming the tensor.
    """
    if regular_file_size(path) == 0:
        raise BadInputError("the file is empty, not an ONNX model", path=str(path))
    if path.suffix.lower() == ".onnx":
        try:
            mapped = load_mapped(path)
        except UnframeError:
            raise
        except Exception:  # noqa: BLE001 - any surprise: protobuf's own load decides and reports
            mapped = None
        if mapped is not None:
            map_external_data(mapped)
            return mapped
    try:
        proto = _read_proto(path)
        model = ir.serde.deserialize_model(proto)
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
    # As ``ir.load``: external data is found beside the model.
    ir.external_data.set_base_dir(model.graph, path.parent)
    check_loaded(proto, model, path)
    map_external_data(model)
    return model


def _read_proto(path: Path) -> onnx.ModelProto:
    """``onnx.load`` without external data, reading only a regular file (never a FIFO)."""
    descriptor, _ = open_regular(path)
    with open(descriptor, "rb") as file:
        data = file.read()
    text_format = onnx.serialization.registry.get_format_from_file_extension(path.suffix)
    return onnx.load_model_from_string(data, format=text_format or "protobuf")


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
        with chunk_written_weights(model):
            ir.save(
                model,
                path,
                external_data=f"{path.name}.data",
                size_threshold_bytes=EXTERNAL_TENSOR_MIN_BYTES,
                max_workers=WRITE_WORKERS,
            )
    else:
        # ir.save keeps an external tensor's reference as it was, relative to the source's folder,
        # not this file's: weights read from another model's external data are written inline.
        ir.external_data.load_to_model(model)
        # The same bytes, without copying the weights twice on the way (issue #15).
        if not save_streamed(model, path):
            ir.save(model, path)
