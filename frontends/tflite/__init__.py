"""TFLite frontend: ``.tflite`` -> the IR, a hand-off to tf2onnx's TFLite path.

TensorFlow and tf2onnx are imported only when ``load_tflite`` runs.
"""

from __future__ import annotations

from unframe.frontends.tflite.loading import SOURCE_KEY, load_tflite

__all__ = ["SOURCE_KEY", "load_tflite"]
