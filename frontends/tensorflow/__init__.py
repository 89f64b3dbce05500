"""TensorFlow frontend: SavedModels, Keras files and frozen GraphDefs -> the IR, through tf2onnx.

A hand-off frontend (as PyTorch's hands off to torch.onnx): ``load_tensorflow`` reads what the CLI
is handed, ``from_keras`` and ``from_concrete_function`` convert objects in memory. TensorFlow is
imported only when one of them runs.
"""

from __future__ import annotations

from unframe.frontends.tensorflow.keras_files import H5_SUFFIXES, KERAS_SUFFIXES
from unframe.frontends.tensorflow.loading import (
    DEFAULT_SIGNATURE,
    GRAPH_DEF_SUFFIXES,
    from_concrete_function,
    from_keras,
    is_saved_model,
    load_tensorflow,
)
from unframe.frontends.tensorflow.tf2onnx_handoff import DEFAULT_OPSET, MAX_OPSET, SOURCE_KEY

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_SIGNATURE",
    "GRAPH_DEF_SUFFIXES",
    "H5_SUFFIXES",
    "KERAS_SUFFIXES",
    "MAX_OPSET",
    "SOURCE_KEY",
    "from_concrete_function",
    "from_keras",
    "is_saved_model",
    "load_tensorflow",
]
