"""What both directions of the tflite adapter share: the ``.tflite`` FlatBuffer checked in Python,
its signatures, the ONNX names unframe records in its metadata, and the LiteRT runtime.

Importing this package imports neither tensorflow nor LiteRT's C++ runtime. The frontend imports
only this package of the backend.
"""

from __future__ import annotations

from unframe.backends.tflite.native.flatbuffer import (
    DEFAULT_SIGNATURE,
    FILE_IDENTIFIER,
    ONNX_NAMES_METADATA,
    SignatureIO,
    TFLiteFile,
    parse_tflite,
    read_tflite,
    schema,
    with_onnx_names,
)
from unframe.backends.tflite.native.runtime import (
    litert_interpreter,
    quiet_stderr,
    run_tflite,
    signature_inputs,
)

__all__ = [
    "DEFAULT_SIGNATURE",
    "FILE_IDENTIFIER",
    "ONNX_NAMES_METADATA",
    "SignatureIO",
    "TFLiteFile",
    "litert_interpreter",
    "parse_tflite",
    "quiet_stderr",
    "read_tflite",
    "run_tflite",
    "schema",
    "signature_inputs",
    "with_onnx_names",
]
