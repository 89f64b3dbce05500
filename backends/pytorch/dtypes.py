"""ONNX <-> torch dtype mapping."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import torch

_ONNX_TO_TORCH: dict[ir.DataType, torch.dtype] = {
    ir.DataType.FLOAT: torch.float32,
    ir.DataType.DOUBLE: torch.float64,
    ir.DataType.FLOAT16: torch.float16,
    ir.DataType.BFLOAT16: torch.bfloat16,
    ir.DataType.INT8: torch.int8,
    ir.DataType.INT16: torch.int16,
    ir.DataType.INT32: torch.int32,
    ir.DataType.INT64: torch.int64,
    ir.DataType.UINT8: torch.uint8,
    ir.DataType.UINT16: torch.uint16,
    ir.DataType.UINT32: torch.uint32,
    ir.DataType.UINT64: torch.uint64,
    ir.DataType.BOOL: torch.bool,
    ir.DataType.COMPLEX64: torch.complex64,
    ir.DataType.COMPLEX128: torch.complex128,
    ir.DataType.FLOAT8E4M3FN: torch.float8_e4m3fn,
    ir.DataType.FLOAT8E4M3FNUZ: torch.float8_e4m3fnuz,
    ir.DataType.FLOAT8E5M2: torch.float8_e5m2,
    ir.DataType.FLOAT8E5M2FNUZ: torch.float8_e5m2fnuz,
}


def to_torch_dtype(dtype: ir.DataType | int) -> torch.dtype:
    """The torch dtype of an ONNX element type; raises ``KeyError`` for types torch lacks."""
    return _ONNX_TO_TORCH[ir.DataType(dtype)]


def maybe_torch_dtype(dtype: ir.DataType | int | None) -> torch.dtype | None:
    if dtype is None:
        return None
    return _ONNX_TO_TORCH.get(ir.DataType(dtype))


def is_float(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point or dtype.is_complex


#: ONNX types torch has no dtype for, held in a wider torch dtype with their exact values.
EMULATED: dict[ir.DataType, torch.dtype] = {
    ir.DataType.INT4: torch.int8,
    ir.DataType.UINT4: torch.uint8,
    ir.DataType.INT2: torch.int8,
    ir.DataType.UINT2: torch.uint8,
    ir.DataType.FLOAT4E2M1: torch.float32,
    ir.DataType.FLOAT8E8M0: torch.float32,
}

#: numpy (ml_dtypes) dtype names of the emulated types, for converting arrays in and out.
EMULATED_NUMPY_NAMES = {"int4", "uint4", "int2", "uint2", "float4_e2m1fn", "float8_e8m0fnu"}


def storage_dtype(dtype: ir.DataType | int) -> torch.dtype:
    """The torch dtype that holds values of ONNX type ``dtype`` (itself, or its emulation)."""
    kind = ir.DataType(dtype)
    return EMULATED.get(kind) or to_torch_dtype(kind)


def widen_emulated(array: np.ndarray) -> np.ndarray:
    """An ml_dtypes int4/uint4/int2/uint2/float4/e8m0 array as its storage dtype (same values)."""
    name = array.dtype.name
    if name not in EMULATED_NUMPY_NAMES:
        return array
    if "float" in name:
        return array.astype(np.float32)
    return array.astype(np.uint8 if name.startswith("u") else np.int8)


def narrow_emulated(array: np.ndarray, dtype: ir.DataType | None) -> np.ndarray:
    """The inverse of ``widen_emulated`` for an output declared as ONNX type ``dtype``."""
    if dtype is None or ir.DataType(dtype) not in EMULATED:
        return array
    return array.astype(ir.DataType(dtype).numpy())
