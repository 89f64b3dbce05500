"""The Core ML format both directions share: coremltools loaded quietly, the mlpackage layout, and
the name record that maps MIL names back to ONNX names.

Both ``backends/coreml`` and ``frontends/coreml`` import this package and nothing else of the
backend. Nothing here imports coremltools at import time.
"""

from __future__ import annotations

from unframe.backends.coreml.native._loading import coremltools, mil, quiet_stderr
from unframe.backends.coreml.native.names import (
    ONNX_SCALARS_KEY,
    SOURCE_NAMES_KEY,
    MilNames,
    decode_source_names,
    encode_source_names,
    sanitize_name,
    source_name,
)
from unframe.backends.coreml.native.package import (
    DATA_DIR,
    MANIFEST,
    SPEC_FILE,
    WEIGHTS_DIR,
    is_mlpackage,
    load_mil_program,
    load_spec,
)

__all__ = [
    "DATA_DIR",
    "MANIFEST",
    "ONNX_SCALARS_KEY",
    "SOURCE_NAMES_KEY",
    "SPEC_FILE",
    "WEIGHTS_DIR",
    "MilNames",
    "coremltools",
    "decode_source_names",
    "encode_source_names",
    "is_mlpackage",
    "load_mil_program",
    "load_spec",
    "mil",
    "quiet_stderr",
    "sanitize_name",
    "source_name",
]
