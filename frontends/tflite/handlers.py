"""TFLite ops tf2onnx's TFLite path does not map to TF ops, taught to it here.

tf2onnx converts a ``.tflite`` in two steps: each TFLite op becomes the TF op it stands for
(``tf2onnx.tflite_handlers``), then the TF handlers make ONNX. An op missing from the first step
is left as ``TFL_...``; where the TF op exists and has a handler (tf2onnx's or the TensorFlow
frontend's, ``frontends/tensorflow/handlers.py``), a one-line mapping is enough.
"""

from __future__ import annotations

import functools
from typing import Any

from unframe.frontends.tensorflow.handlers import register_handlers

#: TFLite op -> the TF op it computes (same inputs, outputs and attributes).
DIRECT_TF_OPS = {
    # Keras 3 and PyTorch's broadcasting shapes (the TensorFlow frontend converts BroadcastArgs).
    "TFL_BROADCAST_ARGS": "BroadcastArgs",
}


class _Direct:
    """tf2onnx's TFLite-to-TF step: renaming the op to ``tf_op`` is all it takes."""

    @classmethod
    def to_tf(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
        pass


@functools.cache
def register_tflite_handlers() -> None:
    """Adds the mappings and the TF handlers they need (idempotent; tf2onnx's own ones win)."""
    from tf2onnx.handler import tf_op, tfl_op

    register_handlers()
    known = tf_op.get_opsets().get("com.google.tensorflow", [{}])[0]
    for tflite_op, tensorflow_op in DIRECT_TF_OPS.items():
        if tflite_op not in known:
            tfl_op(tflite_op, tf_op=tensorflow_op)(_Direct)
