"""Turns names from a model into safe, unique Python identifiers for generated code.

Model-provided names (values, nodes, initializers, graph inputs) are arbitrary strings. They reach
``torch.fx`` code generation and ``nn.Module`` attribute names, so every one is reduced here to
``[A-Za-z_][A-Za-z0-9_]*``, kept off Python keywords and builtins, and made unique. Attribute names
are also kept off everything an ``fx.GraphModule`` already has (``to``, ``cuda``, ``state_dict``,
``meta``...): an initializer called ``to`` must not shadow, or collide with, the module's method.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import re

_NOT_WORD = re.compile(r"[^0-9A-Za-z_]+")
_MAX_LENGTH = 64
_RESERVED = frozenset(dir(builtins)) | {"self", "torch", "fx", "math", "operator"}
#: The names torch.onnx gives the values it creates (onnx_ir's ``NameAuthority``). It does not
#: check them against the program's parameter and buffer names, so a weight called ``val_25``
#: (as torch.onnx itself names constants in the ONNX files it writes) and a new ``val_25`` become
#: two initializers of one name, and reading our ``.pt2`` back fails ("Initializer 'val_25' is
#: already registered").
_EXPORTER_NAMES = re.compile(r"val_\d+")


def sanitize(name: str, *, prefix: str = "v") -> str:
    """A valid, non-keyword Python identifier derived from ``name`` (ASCII word chars only)."""
    text = _NOT_WORD.sub("_", name).strip("_")[:_MAX_LENGTH]
    if not text or text[0].isdigit():
        text = f"{prefix}_{text}" if text else prefix
    if keyword.iskeyword(text) or keyword.issoftkeyword(text) or text in _RESERVED:
        text = f"{text}_"
    if text.startswith("_"):
        text = f"{prefix}{text}"
    if _EXPORTER_NAMES.fullmatch(text):
        text = f"{prefix}_{text}"
    return text


@functools.cache
def module_attribute_names() -> frozenset[str]:
    """Every name an ``fx.GraphModule`` answers to: class members and instance attributes."""
    from torch import fx, nn

    sample = fx.GraphModule(nn.Module(), fx.Graph())
    return frozenset(dir(fx.GraphModule)) | frozenset(vars(sample))


class NameScope:
    """Hands out unique sanitized names; the same source name always gets a fresh one."""

    def __init__(self, reserved: set[str] | frozenset[str] | None = None) -> None:
        self._used: set[str] = set(reserved or ())

    def fresh(self, name: str, *, prefix: str = "v") -> str:
        base = sanitize(name, prefix=prefix)
        candidate = base
        counter = 1
        while candidate in self._used:
            candidate = f"{base}_{counter}"
            counter += 1
        self._used.add(candidate)
        return candidate
