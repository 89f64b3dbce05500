"""Names in a MIL program, and the record that maps them back to the ONNX names they came from.

MIL names (function inputs and outputs, op names, variable names) match ``[A-Za-z_][A-Za-z0-9_]*``
and must not be one of MIL's type words. The backend sanitizes each ONNX node and value name
with the rules coremltools' own ``NameSanitizer`` applies, so coremltools renames nothing more,
and writes every name it changed into the package's user metadata under ``SOURCE_NAMES_KEY``
(JSON: ``{"mil name": "onnx name"}``); the frontend reads them back with ``source_name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

#: The ``userDefined`` metadata key of the name record.
SOURCE_NAMES_KEY = "unframe.source_names"
#: ``userDefined`` metadata key: JSON ``{"mil input name": "scalar"}`` for the rank-0 ONNX inputs,
#: which Core ML takes as shape (1,) (it has no rank-0 inputs); the program squeezes them.
ONNX_SCALARS_KEY = "unframe.onnx_scalars"

_INVALID = re.compile(r"[^A-Za-z0-9_]")
#: Words MIL reserves (coremltools' NameSanitizer list).
_RESERVED = frozenset(
    "any bool program func tensor list dict tuple true false string bf16 fp16 fp32 fp64 int8 "
    "int16 int32 int64 uint8 uint16 uint32 uint64 state".split()
)


def sanitize_name(name: str) -> str:
    """``name`` with every character MIL forbids replaced by ``_`` (not yet made unique)."""
    clean = _INVALID.sub("_", name)
    if not clean or not re.match(r"[A-Za-z_]", clean):
        clean = "_" + clean
    if clean in _RESERVED:
        clean = "_" + clean
    return clean


class MilNames:
    """Hands out unique MIL names and records which ONNX name each one replaced."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        #: MIL name -> the ONNX name it stands for, where the two differ.
        self.renamed: dict[str, str] = {}

    def claim(self, source: str, *, record: bool = True) -> str:
        """A fresh MIL name for ``source`` (itself where MIL allows it and it is free).

        ``record``: ``source`` is an ONNX name, to be recorded where the MIL name differs.
        """
        base = sanitize_name(source)
        name, counter = base, 0
        while name in self._taken:
            name = f"{base}_{counter}"
            counter += 1
        self._taken.add(name)
        if record and name != source:
            self.renamed[name] = source
        return name

    def reserve(self, name: str) -> None:
        self._taken.add(name)

    def is_taken(self, name: str) -> bool:
        return name in self._taken


def encode_source_names(renamed: Mapping[str, str]) -> str:
    return json.dumps(dict(renamed), sort_keys=True, separators=(",", ":"))


def decode_source_names(text: str | None) -> dict[str, str]:
    """The name record of a package's metadata (empty where there is none or it is unreadable)."""
    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {str(k): str(v) for k, v in record.items() if isinstance(v, str)}


def source_name(record: Mapping[str, str], mil_name: str) -> str:
    """The ONNX name ``mil_name`` was written for (itself where it was not renamed)."""
    return record.get(mil_name, mil_name)
