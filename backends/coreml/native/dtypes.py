"""The record of the ONNX element types a package's inputs and outputs had before Core ML held
them in its own (int64 and the narrower integers as int32, bool as float32 at the boundary, double
as float32): the backend writes it, the frontend casts back to it."""

from __future__ import annotations

__all__ = ["HELD_AS_IS", "ONNX_DTYPES_KEY"]

#: ``userDefined`` metadata key: JSON ``{"mil input/output name": "ONNX element type name"}`` for
#: the graph inputs and outputs held in another type than the ONNX model's.
ONNX_DTYPES_KEY = "unframe.onnx_dtypes"
#: ONNX element type names a Core ML input or output holds as they are.
HELD_AS_IS = frozenset({"FLOAT", "FLOAT16", "INT32"})
