"""TF op and signature names from ONNX names (TF's rule: ``[A-Za-z0-9.][A-Za-z0-9_.\\-/]*``)."""

from __future__ import annotations

import re

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
    key = tf_name(name, fallback).replace("/", "_").replace("-", "_")
    if not re.match(r"[A-Za-z]", key):
        key = f"{fallback}_{key}"
    base, index = key, 1
    while key in taken:
        key = f"{base}_{index}"
        index += 1
    taken.add(key)
    return key
