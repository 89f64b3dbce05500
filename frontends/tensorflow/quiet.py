"""Importing TensorFlow, Keras and tf2onnx without their chatter (unless ``unframe --debug``).

TensorFlow's C++ runtime writes its start-up lines ("oneDNN custom operations are on", "Could not
find cuda drivers") to the process's stderr before absl logging is initialised, so neither
``TF_CPP_MIN_LOG_LEVEL`` nor absl's level reach them: the first import runs with file descriptor 2
pointed at /dev/null. Python-side warnings go through the ``tensorflow`` and ``absl`` loggers, and
tf2onnx logs every op it cannot convert at ERROR and carries on; ``captured_tf2onnx_log`` keeps
those records for the frontend to judge instead of printing them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

#: Loggers whose records are TensorFlow's, Keras' or tf2onnx's own chatter.
_NOISY_LOGGERS = ("tensorflow", "absl", "keras", "tf_keras", "h5py")


def debugging() -> bool:
    """Whether ``unframe --debug`` asked for everything (the ``unframe`` logger at DEBUG)."""
    return logging.getLogger("unframe").isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null: C++ code writes there directly."""
    if debugging():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedding host): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly the first time; its Python loggers kept at ERROR."""
    if not debugging():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    already = "tensorflow" in sys.modules
    with contextlib.ExitStack() as stack:
        if not already:
            stack.enter_context(_stderr_silenced())
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        import tensorflow as tf
    if not debugging():
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    return tf


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Silences TensorFlow's and Keras' warnings and C++ lines while loading or tracing a model."""
    if debugging():
        yield
        return
    with _stderr_silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_tf2onnx_log() -> Iterator[list[logging.LogRecord]]:
    """Collects tf2onnx's warnings and errors instead of printing them (printed too with --debug).

    tf2onnx logs an op it has no handler for, or a handler that raised, and goes on: the caller
    reads the records afterwards, so that nothing it logged is lost or shown as noise.
    """
    logger = logging.getLogger("tf2onnx")
    collector = _Collector()
    propagate, level = logger.propagate, logger.level
    logger.addHandler(collector)
    if not debugging():
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate
        logger.setLevel(level)
