"""TensorFlow backend: ONNX IR -> ``tf.Module`` -> SavedModel, one ONNX node at a time.

``to_tensorflow(model)`` traces the graph into a ``tf.function`` whose signature is the ONNX
graph's inputs and outputs; ``save_saved_model`` writes it with a ``serving_default`` signature.
The driver (and with it tensorflow, quietly: ``native.import_tensorflow``) is imported on the
first read of one of these names: every conversion asks ``native`` whether an output path is a
SavedModel directory, and that must not cost the driver's import (issue #15, no fixed tax).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unframe.backends.tensorflow.driver import (
        TFExport,
        run_built,
        save_saved_model,
        to_tensorflow,
    )

__all__ = ["TFExport", "run_built", "save_saved_model", "to_tensorflow"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from unframe.backends.tensorflow import driver

    return getattr(driver, name)
