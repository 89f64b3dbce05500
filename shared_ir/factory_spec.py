"""Telling a Python model factory (user code to run) from a model path, without importing torch.

A factory executes the user's file or module, so only an explicit form names one:

- ``py:path/to/file.py:make_model`` or ``py:package.module:make_model``;
- the older ``path/to/file.py:make_model``, only where that ``.py`` file exists and is named with its
  ``.py`` suffix.

Anything else with a colon (``model.onnx:weights``, ``model:x``) is a plain path, so a typo or a
missing file never imports ``./model.py`` from the working directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unframe.shared_ir.errors import BadInputError

#: The prefix that marks a factory explicitly.
FACTORY_PREFIX = "py:"
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FORMS = "py:path/to/file.py:FUNCTION or py:package.module:FUNCTION"


@dataclass(frozen=True)
class FactorySpec:
    """A factory the user named: a ``.py`` file or a dotted module, and the function to call."""

    target: str
    function: str

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py")


def is_factory_spec(text: str | Path) -> bool:
    """Whether ``text`` names a factory (``py:...``, or an existing ``file.py:function``)."""
    text = str(text)
    return text.startswith(FACTORY_PREFIX) or _legacy_spec(text) is not None


def parse_factory_spec(text: str | Path) -> FactorySpec | None:
    """The factory ``text`` names, or None where it is a path.

    Raises:
        BadInputError: ``text`` starts with ``py:`` but does not read as a factory.
    """
    text = str(text)
    if not text.startswith(FACTORY_PREFIX):
        return _legacy_spec(text)
    target, colon, function = text[len(FACTORY_PREFIX) :].rpartition(":")
    if (
        not colon
        or not _FUNCTION.match(function)
        or not (target.endswith(".py") or _DOTTED.match(target))
    ):
        raise BadInputError("not a factory spec", path=text, framework="pytorch", hint=_FORMS)
    return FactorySpec(target, function)


def _legacy_spec(text: str) -> FactorySpec | None:
    target, colon, function = text.rpartition(":")
    if not colon or not target.endswith(".py") or not _FUNCTION.match(function):
        return None
    # The old form stays only for a file that is there: ``missing.py:f`` is a missing path.
    if Path(text).exists() or not Path(target).is_file():
        return None
    return FactorySpec(target, function)
