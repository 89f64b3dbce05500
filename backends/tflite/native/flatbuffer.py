"""The ``.tflite`` file: a FlatBuffer (file identifier ``TFL3``) checked in Python before any C++
reads it, its signatures, and the record of ONNX input/output names unframe keeps in its metadata.

LiteRT's C++ loader trusts offsets it reads; a truncated or corrupt file is therefore unpacked once
here, with the schema's Python bindings (which raise rather than read out of bounds), so that such a
file is one exit-2 message naming it, never a crash.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unframe.shared_ir.errors import BadInputError

#: The four bytes at offset 4 of every TFLite FlatBuffer.
FILE_IDENTIFIER = b"TFL3"
#: The signature TFLiteConverter names after the SavedModel's default one.
DEFAULT_SIGNATURE = "serving_default"
#: Metadata entry holding the ONNX graph's input and output names, in graph order, with the
#: signature key each was sanitized to (a signature's inputs and outputs are sorted by key).
ONNX_NAMES_METADATA = "unframe.onnx_names"
#: The most a .tflite may be: FlatBuffers address 2 GiB (bigger models use external buffers).
MAX_BYTES = 2**31


@dataclass
class SignatureIO:
    """One signature: its key and, in the order the model gives them, (key, tensor name) pairs."""

    key: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]


@dataclass
class TFLiteFile:
    """A checked ``.tflite``: its bytes, signatures and the ONNX names unframe recorded (if any)."""

    data: bytes
    signatures: list[SignatureIO]
    onnx_inputs: list[tuple[str, str]] | None
    onnx_outputs: list[tuple[str, str]] | None
    #: Signature keys of the inputs and outputs ``--layout nhwc`` made channels-last.
    nhwc_inputs: list[str]
    nhwc_outputs: list[str]
    #: Each operator's first output tensor name (how tf2onnx names its node) -> its op type.
    operators: dict[str, str]
    #: Signature keys of the inputs and outputs whose ONNX type TFLite has none for -> that
    #: type's name (``native/carried.py``: they are held as uint8 bits or int8/uint8 values).
    carried_inputs: dict[str, str] = field(default_factory=dict)
    carried_outputs: dict[str, str] = field(default_factory=dict)

    def signature(self, key: str = DEFAULT_SIGNATURE) -> SignatureIO | None:
        """The signature ``key``, the only one where there is one, else None."""
        for signature in self.signatures:
            if signature.key == key:
                return signature
        return self.signatures[0] if len(self.signatures) == 1 else None


def schema() -> Any:
    """LiteRT's generated FlatBuffer bindings (pure Python: they import ``flatbuffers`` only)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_tflite(path: Path) -> TFLiteFile:
    """Reads and checks the ``.tflite`` at ``path``; BadInputError (exit 2) naming it otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise BadInputError(
                f"{size} bytes is more than a TFLite FlatBuffer can address (2 GiB)",
                path=str(path),
            )
        data = path.read_bytes()
    except IsADirectoryError:
        raise BadInputError("a directory, not a .tflite file", path=str(path)) from None
    except OSError as error:
        raise BadInputError(f"cannot read: {error.strerror or error}", path=str(path)) from None
    return parse_tflite(data, str(path))


def parse_tflite(data: bytes, where: str | None = None) -> TFLiteFile:
    """Checks ``data`` is a whole TFLite FlatBuffer and reads its signatures and metadata."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise BadInputError(
            f"not a TFLite FlatBuffer (no {FILE_IDENTIFIER.decode()} identifier)",
            path=where,
            hint="a .tflite file is written by TFLiteConverter or unframe --to tflite",
        )
    bindings = schema()
    try:
        model = bindings.ModelT.InitFromPackedBuf(bytearray(data), 0)
        _check_offsets(model, len(data))
        signatures = [_signature(model, index) for index in range(len(model.signatureDefs or []))]
        record = _record(model)
        onnx_inputs, onnx_outputs, nhwc_inputs, nhwc_outputs = _recorded_names(record)
        carried_inputs = _carried(record, "carried_inputs")
        carried_outputs = _carried(record, "carried_outputs")
        operators = _operators(model, bindings)
    except (IndexError, KeyError, struct.error, ValueError, TypeError, AttributeError):
        raise BadInputError(
            f"a truncated or corrupt TFLite FlatBuffer ({len(data)} bytes)",
            path=where,
            hint="write the file again; unframe does not read damaged models",
        ) from None
    if not model.subgraphs:
        raise BadInputError("the TFLite model has no subgraph", path=where)
    return TFLiteFile(
        bytes(data),
        signatures,
        onnx_inputs,
        onnx_outputs,
        nhwc_inputs,
        nhwc_outputs,
        operators,
        carried_inputs,
        carried_outputs,
    )


def _check_offsets(model: Any, size: int) -> None:
    """Buffers stored outside the FlatBuffer (``offset``/``size``) must lie inside the file."""
    for buffer in model.buffers or []:
        offset, length = int(buffer.offset or 0), int(buffer.size or 0)
        if offset > 1 and (offset + length > size):
            raise ValueError("a buffer lies outside the file")
    for subgraph in model.subgraphs or []:
        count = len(subgraph.tensors or [])
        for index in [*_ints(subgraph.inputs), *_ints(subgraph.outputs)]:
            if index >= count:
                raise ValueError("a subgraph input or output is not one of its tensors")
        for operator in subgraph.operators or []:
            for index in [*_ints(operator.inputs), *_ints(operator.outputs)]:
                if index >= count:
                    raise ValueError("an operator reads a tensor that does not exist")


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(value) for value in values]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _signature(model: Any, index: int) -> SignatureIO:
    definition = model.signatureDefs[index]
    tensors = model.subgraphs[int(definition.subgraphIndex)].tensors or []

    def pairs(maps: Any) -> list[tuple[str, str]]:
        return [(_text(m.name), _text(tensors[int(m.tensorIndex)].name)) for m in maps or []]

    return SignatureIO(
        _text(definition.signatureKey), pairs(definition.inputs), pairs(definition.outputs)
    )


def _operators(model: Any, bindings: Any) -> dict[str, str]:
    builtin = {
        value: name
        for name, value in vars(bindings.BuiltinOperator).items()
        if not name.startswith("_")
    }
    kinds = []
    for code in model.operatorCodes or []:
        number = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        kind = builtin.get(number, str(number))
        kinds.append(_text(code.customCode) if kind == "CUSTOM" else kind)
    operators: dict[str, str] = {}
    for subgraph in model.subgraphs or []:
        tensors = subgraph.tensors or []
        for operator in subgraph.operators or []:
            if operator.outputs is not None and len(operator.outputs):
                name = _text(tensors[int(operator.outputs[0])].name)
                operators[name] = kinds[int(operator.opcodeIndex)]
    return operators


def _record(model: Any) -> dict[str, Any] | None:
    """The JSON record unframe wrote in the metadata, if any."""
    for entry in model.metadata or []:
        if _text(entry.name) == ONNX_NAMES_METADATA:
            raw = model.buffers[int(entry.buffer)].data
            record = json.loads(bytes(np.asarray(raw, dtype=np.uint8)).decode())
            if not isinstance(record, dict):
                raise ValueError("the unframe metadata is not a JSON object")
            return record
    return None


def _recorded_names(
    record: dict[str, Any] | None,
) -> tuple[list[tuple[str, str]] | None, list[tuple[str, str]] | None, list[str], list[str]]:
    if record is None:
        return None, None, [], []
    inputs = [(str(name), str(key)) for name, key in record["inputs"]]
    outputs = [(str(name), str(key)) for name, key in record["outputs"]]
    nhwc_inputs = [str(key) for key in record.get("nhwc_inputs", [])]
    nhwc_outputs = [str(key) for key in record.get("nhwc_outputs", [])]
    return inputs, outputs, nhwc_inputs, nhwc_outputs


def _carried(record: dict[str, Any] | None, entry: str) -> dict[str, str]:
    from unframe.backends.tflite.native.carried import CARRIED_TYPES

    found = {str(key): str(kind) for key, kind in ((record or {}).get(entry) or {}).items()}
    if any(kind not in CARRIED_TYPES for kind in found.values()):
        raise ValueError("the unframe metadata names a carried type unframe does not know")
    return found


def with_onnx_names(
    data: bytes,
    inputs: list[tuple[str, str]],
    outputs: list[tuple[str, str]],
    nhwc_inputs: list[str] | None = None,
    nhwc_outputs: list[str] | None = None,
    carried_inputs: dict[str, str] | None = None,
    carried_outputs: dict[str, str] | None = None,
) -> bytes:
    """``data`` with a metadata entry recording (ONNX name, signature key) pairs in graph order,
    the keys of the inputs and outputs held channels-last (``--layout nhwc``), and those of the
    inputs and outputs carried in another type (key -> ONNX type name)."""
    import flatbuffers

    bindings = schema()
    model = bindings.ModelT.InitFromPackedBuf(bytearray(data), 0)
    record = {
        "inputs": inputs,
        "outputs": outputs,
        "nhwc_inputs": nhwc_inputs or [],
        "nhwc_outputs": nhwc_outputs or [],
        "carried_inputs": carried_inputs or {},
        "carried_outputs": carried_outputs or {},
    }
    payload = json.dumps(record).encode()
    buffer = bindings.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = bindings.MetadataT()
    entry.name = ONNX_NAMES_METADATA
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())
