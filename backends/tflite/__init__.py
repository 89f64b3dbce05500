"""TFLite backend: ONNX IR -> the TensorFlow backend's signature function -> ``.tflite``.

``to_tflite(model)`` returns the FlatBuffer's bytes; ``run_export`` runs them on LiteRT. Importing
this package imports tensorflow (quietly, through the TensorFlow backend's native layer).
"""

from __future__ import annotations

from unframe.backends.tflite.driver import (
    PRECISIONS,
    TFLiteExport,
    export_registry,
    run_export,
    to_tflite,
)

__all__ = ["PRECISIONS", "TFLiteExport", "export_registry", "run_export", "to_tflite"]
