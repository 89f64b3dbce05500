"""ONNX element types TFLite has no type for, carried in one it has, at a ``.tflite``'s boundary.

TFLite (and TFLiteConverter) refuse float8, float4, E8M0 and the 2- and 4-bit integers. unframe
writes such a signature input or output as uint8 bit patterns (the float formats) or as int8/uint8
values (the small integers) and records its ONNX type in the file's metadata; LiteRT's runner
here views a user's array as its carrier going in and back coming out, so a float8 input goes in
as its uint8 bits and a float8 output comes back as float8.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

#: ONNX type name -> (its ml_dtypes type, the carrier's numpy type, carried as bit patterns).
CARRIED_TYPES: dict[str, tuple[type, type, bool]] = {
    "FLOAT8E4M3FN": (ml_dtypes.float8_e4m3fn, np.uint8, True),
    "FLOAT8E4M3FNUZ": (ml_dtypes.float8_e4m3fnuz, np.uint8, True),
    "FLOAT8E5M2": (ml_dtypes.float8_e5m2, np.uint8, True),
    "FLOAT8E5M2FNUZ": (ml_dtypes.float8_e5m2fnuz, np.uint8, True),
    "FLOAT8E8M0": (ml_dtypes.float8_e8m0fnu, np.uint8, True),
    "FLOAT4E2M1": (ml_dtypes.float4_e2m1fn, np.uint8, True),
    "INT4": (ml_dtypes.int4, np.int8, False),
    "UINT4": (ml_dtypes.uint4, np.uint8, False),
    "INT2": (ml_dtypes.int2, np.int8, False),
    "UINT2": (ml_dtypes.uint2, np.uint8, False),
}


def to_carrier(array: np.ndarray, onnx_type: str) -> np.ndarray:
    """``array`` (of ``onnx_type``, or values that cast to it) as the carrier TFLite is fed."""
    ml_type, carrier, bits = CARRIED_TYPES[onnx_type]
    typed: np.ndarray = np.asarray(array).astype(ml_type)
    return np.ascontiguousarray(typed.view(np.uint8) if bits else typed.astype(carrier))


def from_carrier(array: np.ndarray, onnx_type: str) -> np.ndarray:
    """A carrier TFLite returned as the ``onnx_type`` array it stands for."""
    ml_type, carrier, bits = CARRIED_TYPES[onnx_type]
    held: np.ndarray = np.ascontiguousarray(np.asarray(array).astype(carrier))
    return held.view(ml_type) if bits else held.astype(ml_type)
