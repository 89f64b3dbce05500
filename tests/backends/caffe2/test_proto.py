"""caffe2.proto: field numbers and wire format match Caffe2's published schema."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unframe.backends.caffe2.native import caffe2_pb2

REPO = Path(__file__).resolve().parents[3]

# Field numbers as published in caffe2/proto/caffe2.proto (PyTorch 1.x, the last Caffe2).
PUBLISHED_FIELDS = {
    "TensorProto": {
        "dims": 1, "data_type": 2, "float_data": 3, "int32_data": 4, "byte_data": 5,
        "string_data": 6, "name": 7, "device_detail": 8, "double_data": 9, "int64_data": 10,
        "segment": 11, "raw_data": 13, "data_format": 15,
    },
    "TensorProto.Segment": {"begin": 1, "end": 2},
    "QTensorProto": {
        "dims": 1, "precision": 2, "scale": 3, "bias": 4, "is_signed": 5, "data": 6, "name": 7,
        "data_type": 8, "scales": 9, "biases": 10, "axis": 11, "is_multiparam": 12,
    },
    "TensorProtos": {"protos": 1},
    "TensorShape": {"dims": 1, "data_type": 2, "unknown_dims": 3, "unknown_shape": 4, "name": 5},
    "TensorShapes": {"shapes": 1},
    "Argument": {
        "name": 1, "f": 2, "i": 3, "s": 4, "floats": 5, "ints": 6, "strings": 7, "n": 8,
        "nets": 9, "t": 10, "tensors": 11, "qtensors": 12,
    },
    "DeviceOption": {
        "device_type": 1, "device_id": 2, "random_seed": 3, "node_name": 4, "numa_node_id": 5,
        "extra_info": 6,
    },
    "OperatorDef": {
        "input": 1, "output": 2, "name": 3, "type": 4, "arg": 5, "device_option": 6,
        "engine": 7, "control_input": 8, "is_gradient_op": 9, "debug_info": 10, "domain": 11,
        "op_version": 12,
    },
    "NetDef": {
        "name": 1, "op": 2, "type": 3, "num_workers": 4, "device_option": 5, "arg": 6,
        "external_input": 7, "external_output": 8, "partition_info": 9,
    },
    "ExecutionStep": {
        "name": 1, "substep": 2, "network": 3, "num_iter": 4, "criteria_network": 5,
        "concurrent_substeps": 6, "report_net": 7, "report_interval": 8, "should_stop_blob": 9,
        "only_once": 10, "run_every_ms": 11, "create_workspace": 12,
        "num_concurrent_instances": 13,
    },
    "PlanDef": {"name": 1, "network": 2, "execution_step": 3},
    "BlobProto": {
        "name": 1, "type": 2, "tensor": 3, "content": 4, "qtensor": 5, "content_num_chunks": 6,
        "content_chunk_id": 7,
    },
    "DBReaderProto": {"name": 1, "source": 2, "db_type": 3, "key": 4},
}  # fmt: skip

PUBLISHED_DATA_TYPES = {
    "UNDEFINED": 0, "FLOAT": 1, "INT32": 2, "BYTE": 3, "STRING": 4, "BOOL": 5, "UINT8": 6,
    "INT8": 7, "UINT16": 8, "INT16": 9, "INT64": 10, "FLOAT16": 12, "DOUBLE": 13,
    "ZERO_COLLISION_HASH": 14, "REBATCHING_BUFFER": 15,
}  # fmt: skip


def _message(path: str) -> Any:
    cls: Any = caffe2_pb2
    for part in path.split("."):
        cls = getattr(cls, part)
    return cls


@pytest.mark.parametrize("message", sorted(PUBLISHED_FIELDS))
def test_field_numbers_match_the_published_schema(message: str) -> None:
    fields = {f.name: f.number for f in _message(message).DESCRIPTOR.fields}
    assert fields == PUBLISHED_FIELDS[message]


def test_data_type_enum_matches_the_published_schema() -> None:
    assert dict(caffe2_pb2.TensorProto.DataType.items()) == PUBLISHED_DATA_TYPES
    assert caffe2_pb2.TensorProto().data_type == PUBLISHED_DATA_TYPES["FLOAT"]  # the default


def _key(number: int, wire_type: int) -> bytes:
    return bytes([(number << 3) | wire_type])


def _length_delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return _key(number, 2) + bytes([len(payload)]) + payload


def test_hand_encoded_netdef_parses() -> None:
    # OperatorDef{input: "x", output: "y", type: "Relu", arg {name: "alpha", f: 0.5, i: 3}}
    arg = (
        _length_delimited(1, b"alpha")
        + _key(2, 5)
        + struct.pack("<f", 0.5)
        + _key(3, 0)
        + bytes([3])
    )
    op = (
        _length_delimited(1, b"x")
        + _length_delimited(2, b"y")
        + _length_delimited(4, b"Relu")
        + _length_delimited(5, arg)
    )
    data = _length_delimited(1, b"net") + _length_delimited(2, op) + _length_delimited(8, b"y")
    net = caffe2_pb2.NetDef.FromString(data)
    assert net.name == "net"
    assert net.external_output == ["y"]
    assert (net.op[0].type, net.op[0].input, net.op[0].output) == ("Relu", ["x"], ["y"])
    assert (net.op[0].arg[0].name, net.op[0].arg[0].f, net.op[0].arg[0].i) == ("alpha", 0.5, 3)


def test_tensor_data_is_written_packed_as_caffe2_declares() -> None:
    tensor = caffe2_pb2.TensorProto(dims=[2], float_data=[1.0, 2.0], int64_data=[7])
    data = tensor.SerializeToString()
    assert _length_delimited(3, struct.pack("<ff", 1.0, 2.0)) in data
    assert _length_delimited(10, bytes([7])) in data
    # Unpacked repeated floats (as older writers emit them) parse too.
    unpacked = _key(3, 5) + struct.pack("<f", 1.5) + _key(3, 5) + struct.pack("<f", 2.5)
    assert list(caffe2_pb2.TensorProto.FromString(unpacked).float_data) == [1.5, 2.5]


def test_committed_bindings_are_current(tmp_path: Path) -> None:
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools (the dev extra) is not installed")
    script = REPO / "scripts" / "gen_caffe2_proto.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    committed = REPO / "backends" / "caffe2" / "native" / "caffe2_pb2.py"
    assert (tmp_path / "caffe2_pb2.py").read_text() == committed.read_text()
