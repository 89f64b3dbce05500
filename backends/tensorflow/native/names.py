"""TF op and signature names from ONNX names (TF's rule: ``[A-Za-z0-9.][A-Za-z0-9_.\\-/]*``)."""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

_INVALID = re.compile(r"[^A-Za-z0-9_.\-/]")


def tf_name(name: str, fallback: str = "v") -> str:
    """``name`` made a valid TF op name (scope separators kept, nothing else invented)."""
    cleaned = _INVALID.sub("_", name).strip("/")
    cleaned = re.sub("/+", "/", cleaned)
    if not cleaned:
        return fallback
    if not re.match(r"[A-Za-z0-9.]", cleaned):
        cleaned = f"{fallback}{cleaned}"
    return cleaned


def signature_key(name: str, taken: set[str], fallback: str) -> str:
    """A signature argument key for ``name``: sanitized, without ``/`` and unique in ``taken``."""
    # A Python identifier: tf.function renames any other argument name (with a warning), and a
    # reader could no longer find the key from the recorded ONNX name.
    key = re.sub(r"\W", "_", tf_name(name, fallback))
    if not re.match(r"[A-Za-z]", key):
        key = f"{fallback}_{key}"
    if keyword.iskeyword(key):  # ``from`` is an identifier tf.function still renames
        key = f"{key}_"
    base, index = key, 1
    while key in taken:
        key = f"{base}_{index}"
        index += 1
    taken.add(key)
    return key


def signature_keys(
    input_names: Sequence[str], output_names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The signature keys of a graph's inputs and outputs (one namespace, inputs first): the
    backend names its signature so, and a reader maps recorded ONNX names back through it."""
    taken: set[str] = set()
    inputs = [signature_key(name, taken, f"input_{i}") for i, name in enumerate(input_names)]
    outputs = [signature_key(name, taken, f"output_{i}") for i, name in enumerate(output_names)]
    return inputs, outputs
