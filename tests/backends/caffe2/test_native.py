"""The Caffe2 native layer's public surface, its one dtype table and its one argument reader."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

import unframe.backends.caffe2.native as native
from unframe.backends.caffe2.native import ArgumentReader, caffe2_pb2
from unframe.backends.caffe2.native.executor import OpContext
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.shared_ir.errors import BadInputError


def test_every_public_name_is_defined() -> None:
    assert sorted(native.__all__) == sorted(set(native.__all__))
    for name in native.__all__:
        assert hasattr(native, name), name


def test_dtype_tables_agree_with_the_proto_enum_names() -> None:
    # The enum's names are Caffe2's own; numpy and onnx_ir spell the same types alike.
    names = {"BYTE": "UINT8"}
    for code, dtype in native.NUMPY_DTYPES.items():
        name = native.data_type_name(code)
        if name == "STRING":
            assert dtype == np.dtype(object)
            continue
        expected = names.get(name, name)
        assert native.IR_DTYPES[code].name == expected
        assert ir.DataType[expected].numpy() == dtype
    for ir_type, code in native.CAFFE2_DTYPES.items():
        assert native.IR_DTYPES[code] == ir_type
    assert native.data_type_name(99) == "99"


def _op(**args: object) -> caffe2_pb2.OperatorDef:
    op = caffe2_pb2.OperatorDef(type="Conv", name="conv1")
    for name, value in args.items():
        arg = op.arg.add(name=name)
        if isinstance(value, list):
            (arg.floats if any(isinstance(v, float) for v in value) else arg.ints).extend(value)
        elif isinstance(value, float):
            arg.f = value
        elif isinstance(value, str):
            arg.s = value.encode()
        else:
            arg.i = int(value)  # type: ignore[call-overload]
    return op


def test_importer_and_executor_read_arguments_alike() -> None:
    op = _op(kernel=3, pads=[1, 1, 1, 1], alpha=0.5, order="NHWC", strides=[2.0, 2.0])
    importer = Args(op, ImportContext("net"))
    executor = OpContext(op, 0, [])
    assert isinstance(importer, ArgumentReader) and isinstance(executor.args, ArgumentReader)
    assert importer.integer("kernel", 0) == executor.arg_int("kernel", 0) == 3
    assert importer.integers("pads") == executor.arg_ints("pads") == [1, 1, 1, 1]
    # A list of whole floats reads as integers in both (Caffe2's GetRepeatedArgument<int>).
    assert importer.integers("strides") == executor.arg_ints("strides") == [2, 2]
    assert importer.number("alpha", 0.0) == executor.arg_float("alpha", 0.0) == 0.5
    assert importer.string("order", "NCHW") == executor.arg_str("order", "NCHW") == "NHWC"
    assert importer.integers("absent") is None and executor.arg_ints("absent", [7]) == [7]
    assert importer.unread() == set()  # "order" is benign; every other one was read


@pytest.mark.parametrize("reader", ["importer", "executor"])
def test_a_malformed_argument_is_bad_input_naming_it(reader: str) -> None:
    op = _op(kernel="three")
    with pytest.raises(BadInputError, match=r"'kernel' must be an integer, got an argument with s"):
        if reader == "importer":
            Args(op, ImportContext("net")).integer("kernel", 1)
        else:
            OpContext(op, 0, []).arg_int("kernel", 1)
