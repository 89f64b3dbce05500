"""Imports coremltools quietly: on Linux it prints "Failed to load ..." lines for its macOS-only
native modules straight to file descriptor 2, and tqdm progress bars during every conversion."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Sends file descriptor 2 (C and Python writers alike) and Python warnings to /dev/null.

    Left alone under ``--debug`` (the ``unframe`` logger at DEBUG), which shows everything.
    """
    if logging.getLogger("unframe").isEnabledFor(logging.DEBUG):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def coremltools() -> ModuleType:
    """The ``coremltools`` module, imported without its Linux noise."""
    with quiet_stderr():
        import coremltools as ct

        # The MIL builder and the milproto reader are imported here too, under the same silence.
        import coremltools.converters.mil  # noqa: F401
        import coremltools.converters.mil.frontend.milproto.load  # noqa: F401
    return ct


def mil() -> Any:
    """``coremltools.converters.mil`` (Builder, Program, Function, types)."""
    coremltools()
    import coremltools.converters.mil as mil_module

    return mil_module
