"""Imports tensorflow without its C++ start-up lines, and maps ONNX element types to TF's."""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType
from typing import Any

import onnx_ir as ir

from unframe.shared_ir.errors import FrameworkNotInstalledError, UnsupportedError

_LOG = logging.getLogger("unframe.backends.tensorflow")


def import_tensorflow() -> ModuleType:
    """``tensorflow``, imported once; its C++ logs are silenced unless unframe logs at DEBUG.

    TF 2.21 writes its oneDNN and CUDA notices to file descriptor 2 before absl's logging starts,
    so ``TF_CPP_MIN_LOG_LEVEL`` alone does not hide them: stderr is pointed at /dev/null for the
    import itself (Python errors raised by the import still reach the caller as exceptions).
    """
    loaded = sys.modules.get("tensorflow")
    if loaded is not None and hasattr(loaded, "function"):
        return loaded
    debug = logging.getLogger("unframe").isEnabledFor(logging.DEBUG)
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if debug:
            import tensorflow as tf
        else:
            with stderr_silenced():
                import tensorflow as tf
    except ImportError as error:
        raise FrameworkNotInstalledError(
            f"the tensorflow adapter needs tensorflow, which cannot be imported: {error}",
            framework="tensorflow",
            hint="pip install 'unframe[tensorflow]'",
        ) from error
    if not debug:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


class stderr_silenced:  # noqa: N801 - used as a context manager
    def __enter__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


def tf_dtype(dtype: ir.DataType | None, what: str = "tensor") -> Any:
    """The ``tf.DType`` of an ONNX element type; UnsupportedError where TF has none."""
    tf = import_tensorflow()
    if dtype is None:
        raise UnsupportedError(f"the element type of the {what} is unknown")
    if dtype == ir.DataType.STRING:
        return tf.string
    try:
        return tf.as_dtype(dtype.numpy())
    except (TypeError, ValueError, KeyError, NotImplementedError):
        raise UnsupportedError(
            f"TensorFlow has no {dtype.name} element type (for {what})"
        ) from None
