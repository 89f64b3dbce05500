"""The ONNX names unframe keeps in a ``.pt2`` it writes (its ``unframe.json`` extra file).

Both directions use this module: the backend writes the names when it saves a ``.pt2``, and the
frontend reads them back, so that a value keeps its name across ONNX -> ``.pt2`` -> ONNX. It imports
no torch: the names need none of the program's weights.

``unframe.json`` holds ``inputs`` and ``outputs`` (the graph's input and output names, in order) and
``initializers`` (each ``state_dict`` key of the program -> the ONNX initializer it came from) and
``values`` (the name torch.onnx gives an intermediate value -> ``{"value", "node", "target"}``: the
ONNX value and node it came from, and the aten op of the fx node torch.onnx names it after).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

#: The extra file ``torch.export.save`` writes under ``<archive>/extra/``.
UNFRAME_JSON = "unframe.json"


def source_names(path: Path) -> dict[str, Any]:
    """The names unframe recorded in a ``.pt2`` it wrote (``{}`` for any other ``.pt2``)."""
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if n.split("/")[1:] == ["extra", UNFRAME_JSON]]
        return dict(json.loads(archive.read(members[0]))) if members else {}


def checked_source_names(path: Path) -> dict[str, Any]:
    """``source_names`` where they are well formed, else ``{}`` (a file may claim anything).

    The names only restore what the program's own names lost, so a malformed record is dropped
    rather than refused: the program itself is read and checked elsewhere.
    """
    try:
        names = source_names(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, RecursionError):
        return {}
    inputs, outputs = names.get("inputs", []), names.get("outputs", [])
    initializers = names.get("initializers", {})
    if not (
        _strings(inputs)
        and _strings(outputs)
        and isinstance(initializers, dict)
        and _strings(list(initializers))
        and _strings(list(initializers.values()))
    ):
        return {}
    values = names.get("values", {})
    if not (isinstance(values, dict) and all(_value_record(v) for v in values.values())):
        values = {}  # only the intermediate names are lost; the others still hold
    return {"inputs": inputs, "outputs": outputs, "initializers": initializers, "values": values}


def _value_record(record: object) -> bool:
    # An unnamed source node is recorded as "" (its value is still worth its name).
    return (
        isinstance(record, dict)
        and _strings([record.get("value"), record.get("target")])
        and isinstance(record.get("node"), str)
    )


def _strings(items: object) -> bool:
    return isinstance(items, list) and all(isinstance(item, str) and item for item in items)
