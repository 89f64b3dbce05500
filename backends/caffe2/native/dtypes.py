"""Caffe2's element types: the one table the importer, the exporter and the executor read.

Caffe2 names an element type by its ``TensorProto.DataType`` number (``dtype`` and ``to``
arguments, typed fills). Each row below gives that number's numpy dtype and IR element type;
the other tables are views of it.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import caffe2_pb2

DataType = caffe2_pb2.TensorProto.DataType

FLOAT = caffe2_pb2.TensorProto.FLOAT
DOUBLE = caffe2_pb2.TensorProto.DOUBLE
FLOAT16 = caffe2_pb2.TensorProto.FLOAT16
INT8 = caffe2_pb2.TensorProto.INT8
INT16 = caffe2_pb2.TensorProto.INT16
INT32 = caffe2_pb2.TensorProto.INT32
INT64 = caffe2_pb2.TensorProto.INT64
UINT8 = caffe2_pb2.TensorProto.UINT8
UINT16 = caffe2_pb2.TensorProto.UINT16
BYTE = caffe2_pb2.TensorProto.BYTE
BOOL = caffe2_pb2.TensorProto.BOOL
STRING = caffe2_pb2.TensorProto.STRING

#: Caffe2 data type -> (numpy dtype, IR element type; None where the IR keeps no such tensors).
_TABLE: dict[int, tuple[np.dtype, ir.DataType | None]] = {
    FLOAT: (np.dtype(np.float32), ir.DataType.FLOAT),
    INT32: (np.dtype(np.int32), ir.DataType.INT32),
    # BYTE is Caffe2's older name for uint8 data; UINT8 is the one written.
    BYTE: (np.dtype(np.uint8), ir.DataType.UINT8),
    STRING: (np.dtype(object), None),
    BOOL: (np.dtype(np.bool_), ir.DataType.BOOL),
    UINT8: (np.dtype(np.uint8), ir.DataType.UINT8),
    INT8: (np.dtype(np.int8), ir.DataType.INT8),
    UINT16: (np.dtype(np.uint16), ir.DataType.UINT16),
    INT16: (np.dtype(np.int16), ir.DataType.INT16),
    INT64: (np.dtype(np.int64), ir.DataType.INT64),
    FLOAT16: (np.dtype(np.float16), ir.DataType.FLOAT16),
    DOUBLE: (np.dtype(np.float64), ir.DataType.DOUBLE),
}

#: Caffe2 data type -> numpy dtype (strings as object arrays), as the executor holds blobs.
NUMPY_DTYPES: dict[int, np.dtype] = {code: row[0] for code, row in _TABLE.items()}

#: Caffe2 data type -> IR element type (strings excepted), as the importer types values.
IR_DTYPES: dict[int, ir.DataType] = {
    code: ir_type for code, (_, ir_type) in _TABLE.items() if ir_type is not None
}

#: IR element type -> the Caffe2 data type the exporter writes (every type Caffe2 can hold).
CAFFE2_DTYPES: dict[ir.DataType, int] = {
    ir_type: code for code, (_, ir_type) in _TABLE.items() if ir_type is not None and code != BYTE
}

#: The typed GivenTensor*Fill ops and the Caffe2 data type each fills.
GIVEN_FILL_TYPES: dict[str, int] = {
    "GivenTensorFill": FLOAT,
    "GivenTensorDoubleFill": DOUBLE,
    "GivenTensorIntFill": INT32,
    "GivenTensorInt64Fill": INT64,
    "GivenTensorInt16Fill": INT16,
    "GivenTensorBoolFill": BOOL,
    "GivenTensorStringFill": STRING,
}

#: The types GivenTensorFill's ``dtype`` argument may pick; Caffe2 throws "Unexpected 'dtype'
#: argument value" for any other (caffe2/operators/given_tensor_fill_op.h).
GIVEN_TENSOR_FILL_DTYPES = frozenset({FLOAT, DOUBLE, BOOL, INT16, INT32, INT64, STRING})

#: For each IR element type, the fill op that writes it exactly and the type that op fills
#: (a Cast to the element type follows where the two differ).
EXACT_FILLS: dict[ir.DataType, tuple[str, ir.DataType]] = {
    ir.DataType.FLOAT: ("GivenTensorFill", ir.DataType.FLOAT),
    ir.DataType.DOUBLE: ("GivenTensorDoubleFill", ir.DataType.DOUBLE),
    ir.DataType.INT32: ("GivenTensorIntFill", ir.DataType.INT32),
    ir.DataType.INT64: ("GivenTensorInt64Fill", ir.DataType.INT64),
    ir.DataType.BOOL: ("GivenTensorBoolFill", ir.DataType.BOOL),
    ir.DataType.INT16: ("GivenTensorInt16Fill", ir.DataType.INT16),
    ir.DataType.FLOAT16: ("GivenTensorFill", ir.DataType.FLOAT),
    ir.DataType.INT8: ("GivenTensorIntFill", ir.DataType.INT32),
    ir.DataType.UINT8: ("GivenTensorIntFill", ir.DataType.INT32),
    ir.DataType.UINT16: ("GivenTensorIntFill", ir.DataType.INT32),
}


def data_type_name(code: int) -> str:
    """The name of a Caffe2 data type number (FLOAT, INT32...), or the number itself."""
    return DataType.Name(code) if code in DataType.values() else str(code)
