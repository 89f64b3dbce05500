"""TensorFlow backend: ONNX IR -> ``tf.Module`` -> SavedModel, one ONNX node at a time.

``to_tensorflow(model)`` traces the graph into a ``tf.function`` whose signature is the ONNX
graph's inputs and outputs; ``save_saved_model`` writes it with a ``serving_default`` signature.
Importing this package imports tensorflow (quietly: ``native.import_tensorflow``).
"""

from __future__ import annotations

from unframe.backends.tensorflow.driver import (
    TFExport,
    run_built,
    save_saved_model,
    to_tensorflow,
)

__all__ = ["TFExport", "run_built", "save_saved_model", "to_tensorflow"]
