"""Silencing torch while it works for us: both directions export, and torch logs as it goes.

``torch.export`` and ``torch.onnx`` log progress, graph dumps and the tracebacks of failures they
re-raise; the user gets one line from unframe instead (``unframe --debug`` lets all of it through).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import torch

__all__ = ["quiet_torch"]


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """Silences torch's chatter: progress lines, graph dumps, deprecation notes, logged tracebacks.

    Where the ``unframe`` logger is at DEBUG (``unframe --debug``), everything is let through.
    """
    if logging.getLogger("unframe").isEnabledFor(logging.DEBUG):
        yield
        return
    manager = logging.Logger.manager
    noisy = [logging.getLogger("torch")] + [
        logger
        for name, logger in list(manager.loggerDict.items())
        if name.startswith("torch.") and isinstance(logger, logging.Logger)
    ]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.CRITICAL)
    onnx_log = bool(torch._C._jit_is_onnx_log_enabled())
    torch._C._jit_set_onnx_log_enabled(False)
    try:
        # torch.export prints the failing graph itself; the reason reaches the user in our error.
        sink = io.StringIO()
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch._C._jit_set_onnx_log_enabled(onnx_log)
        for logger, level in zip(noisy, levels, strict=True):
            logger.setLevel(level)
