"""NetDef weights moved past protobuf (proto/wire.py) against protobuf's own parser and serializer.

The oracle is always caffe2_pb2 itself: messages built element by element with ``floats.extend``
and serialized by protobuf, or hand-built wire bytes parsed by protobuf.
"""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf.message import DecodeError

from unframe.backends.caffe2.native import caffe2_pb2, values, wire
from unframe.backends.caffe2.native.netdef import parse_netdef, read_netdef, write_netdef
from unframe.backends.caffe2.native.values import get_floats, get_ints, set_floats, set_ints
from unframe.shared_ir.errors import BadInputError

_FLOATS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["floats"].number
_INTS = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["ints"].number
_NAME = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["name"].number
_I = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["i"].number
_OP_ARG = caffe2_pb2.OperatorDef.DESCRIPTOR.fields_by_name["arg"].number
_OP_OUTPUT = caffe2_pb2.OperatorDef.DESCRIPTOR.fields_by_name["output"].number
_OP_TYPE = caffe2_pb2.OperatorDef.DESCRIPTOR.fields_by_name["type"].number
_NET_OP = caffe2_pb2.NetDef.DESCRIPTOR.fields_by_name["op"].number


def _weights(count: int, seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).standard_normal(count).astype(np.float32)
    array[:3] = [np.inf, -0.0, -np.inf]
    return array


def _ints(count: int) -> np.ndarray:
    pattern = np.array([0, 1, -1, 127, 128, -(2**40), 2**62, -(2**63)], dtype=np.int64)
    return np.resize(pattern, count)


def _net(fast: bool) -> tuple[caffe2_pb2.NetDef, list[np.ndarray]]:
    """An init net with every kind of fill; values set by the codec (fast) or element-wise."""
    net = caffe2_pb2.NetDef(name="init", external_input=["data"], type="simple")
    net.device_option.device_type = 0
    net.arg.add(name="net_arg", i=3)
    arrays = [_weights(9000, 1), _weights(5000, 2), _weights(10, 3)]
    for index, array in enumerate(arrays):
        op = net.op.add(type="GivenTensorFill", output=[f"w{index}"], name=f"fill{index}")
        op.arg.add(name="shape", ints=[array.size])
        arg = op.arg.add(name="values")
        if fast:
            set_floats(arg, array)
        else:
            arg.floats.extend(array.tolist())
        op.arg.add(name="after", s=b"kept")
    double = net.op.add(type="GivenTensorDoubleFill", output=["d"])
    arg = double.arg.add(name="values")
    doubles = _weights(6000, 4).astype(np.float64)
    set_floats(arg, doubles) if fast else arg.floats.extend(doubles.astype(np.float32).tolist())
    ints = _ints(7000)
    for fill in ("GivenTensorInt64Fill", "GivenTensorIntFill"):
        op = net.op.add(type=fill, output=[fill])
        arg = op.arg.add(name="values")
        set_ints(arg, ints) if fast else arg.ints.extend(ints.tolist())
    net.op.add(type="ConstantFill", output=["c"]).arg.add(name="value", f=2.0)
    return net, [*arrays, doubles.astype(np.float32)]


def test_packed_file_parses_with_protobuf_to_the_slow_paths_message(tmp_path: Path) -> None:
    fast, _ = _net(fast=True)
    slow, _ = _net(fast=False)
    assert fast == slow
    write_netdef(fast, tmp_path / "init_net.pb")
    data = (tmp_path / "init_net.pb").read_bytes()
    assert caffe2_pb2.NetDef.FromString(data) == slow
    # The weights went out packed (4 bytes a float, not protobuf's 5), so not through protobuf.
    assert len(data) < len(slow.SerializeToString()) - 20_000
    # Written again, the values come from the message (the arrays were handed out): same message.
    write_netdef(fast, tmp_path / "again.pb")
    assert caffe2_pb2.NetDef.FromString((tmp_path / "again.pb").read_bytes()) == slow


def test_packed_floats_are_one_length_delimited_field(tmp_path: Path) -> None:
    net = caffe2_pb2.NetDef()
    array = _weights(4096)
    set_floats(net.op.add(type="GivenTensorFill", output=["w"]).arg.add(name="values"), array)
    write_netdef(net, tmp_path / "n.pb")
    # Hand-built: one op (output, type, then the argument), 16384 bytes of floats in one field.
    arg = bytes([_NAME << 3 | 2, 6]) + b"values" + bytes([_FLOATS << 3 | 2, 0x80, 0x80, 0x01])
    arg += array.astype("<f4").tobytes()
    op = bytes([_OP_OUTPUT << 3 | 2, 1]) + b"w" + bytes([_OP_TYPE << 3 | 2, 15])
    op += b"GivenTensorFill" + bytes([_OP_ARG << 3 | 2]) + wire.varint(len(arg)) + arg
    expected = bytes([_NET_OP << 3 | 2]) + wire.varint(len(op)) + op
    assert (tmp_path / "n.pb").read_bytes() == expected
    assert caffe2_pb2.NetDef.FromString(expected) == net


def test_unpacked_file_written_by_protobuf_reads_the_same_arrays(tmp_path: Path) -> None:
    slow, arrays = _net(fast=False)
    data = slow.SerializeToString()
    (tmp_path / "init_net.pb").write_bytes(data)
    net, found = wire.parse_netdef_with_lists(data)
    assert net == slow
    big = [a for a in arrays if a.size >= wire.FAST_MIN]
    assert len(found) == len(big)  # protobuf's unpacked ints are left to protobuf
    for (arg, field, floats), expected in zip(found, big, strict=True):
        assert (arg.name, field) == ("values", "floats")
        np.testing.assert_array_equal(floats.view(np.uint32), expected.view(np.uint32))
    read = read_netdef(tmp_path / "init_net.pb")
    assert read == slow
    fills = [op.arg[1] for op in read.op[:3]] + [read.op[3].arg[0]]
    for arg, expected in zip(fills, arrays, strict=True):
        got = get_floats(arg)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    int_op = next(op for op in read.op if op.type == "GivenTensorInt64Fill")
    np.testing.assert_array_equal(get_ints(int_op.arg[0]), _ints(7000))


def test_packed_ints_read_back_as_written(tmp_path: Path) -> None:
    fast, _ = _net(fast=True)
    write_netdef(fast, tmp_path / "n.pb")
    data = (tmp_path / "n.pb").read_bytes()
    net, found = wire.parse_netdef_with_lists(data)
    assert net == _net(fast=False)[0]
    ints = [array for _, field, array in found if field == "ints"]
    assert len(ints) == 2
    for array in ints:
        np.testing.assert_array_equal(array, _ints(7000))
    read = read_netdef(tmp_path / "n.pb")
    for op in read.op[4:6]:
        np.testing.assert_array_equal(get_ints(op.arg[0]), _ints(7000))


@pytest.mark.parametrize(
    "numbers", [[0, 1, 127, 128, 300, 2**63 - 1, -1, -(2**63), -(2**40)], list(range(-600, 600))]
)
def test_varints_decode_as_protobuf_encodes_them(numbers: list[int]) -> None:
    arg = caffe2_pb2.Argument(ints=numbers)
    data = arg.SerializeToString()
    # protobuf's own packed encoding: the same message re-read packed by hand-built bytes.
    payload = b"".join(wire.varint(v & (2**64 - 1)) for v in numbers)
    packed = bytes([_INTS << 3 | 2]) + wire.varint(len(payload)) + payload
    assert caffe2_pb2.Argument.FromString(packed) == caffe2_pb2.Argument.FromString(data)
    decoded = wire.decode_varints(np.frombuffer(payload, np.uint8))
    assert decoded.tolist() == numbers
    assert wire.varints(np.array(numbers, dtype=np.int64)) == payload


def test_broken_packed_varints_are_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.decode_varints(np.array([0x80, 0x80], np.uint8))
    with pytest.raises(wire.WireError):
        wire.decode_varints(np.array([0xFF] * 11 + [0x01], np.uint8))


def test_nan_payloads_survive_both_ways(tmp_path: Path) -> None:
    array = _weights(5000)
    array[10:14] = np.array([0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FFFFFFF], np.uint32).view(
        np.float32
    )
    net = caffe2_pb2.NetDef()
    set_floats(net.op.add(type="GivenTensorFill", output=["w"]).arg.add(name="values"), array)
    write_netdef(net, tmp_path / "n.pb")
    read = read_netdef(tmp_path / "n.pb")
    np.testing.assert_array_equal(get_floats(read.op[0].arg[0]).view(np.uint32), array.view("u4"))


def _arg_bytes(*fields: bytes) -> bytes:
    return b"".join(fields)


def _unpacked(array: np.ndarray) -> bytes:
    return b"".join(bytes([_FLOATS << 3 | 5]) + struct.pack("<f", v) for v in array.tolist())


def _packed(array: np.ndarray) -> bytes:
    payload = array.astype("<f4").tobytes()
    return bytes([_FLOATS << 3 | 2]) + wire.varint(len(payload)) + payload


def _net_bytes(arg: bytes) -> bytes:
    name = b"GivenTensorFill"
    op = bytes([_OP_TYPE << 3 | 2, len(name)]) + name
    op += bytes([_OP_ARG << 3 | 2]) + wire.varint(len(arg)) + arg
    return bytes([_NET_OP << 3 | 2]) + wire.varint(len(op)) + op


@pytest.mark.parametrize("buffer", [bytes, bytearray])
@pytest.mark.parametrize(
    "layout",
    ["unpacked, i, unpacked", "packed, unpacked", "unpacked, packed, name last", "two packed"],
)
def test_split_float_lists_read_as_protobuf_reads_them(layout: str, buffer: type) -> None:
    first, second = _weights(3000, 5), _weights(2500, 6)
    name = bytes([_NAME << 3 | 2, 6]) + b"values"
    other = bytes([_I << 3, 7])
    arg = {
        "unpacked, i, unpacked": name + _unpacked(first) + other + _unpacked(second),
        "packed, unpacked": name + _packed(first) + _unpacked(second),
        "unpacked, packed, name last": _unpacked(first) + _packed(second) + name,
        "two packed": _packed(first) + name + _packed(second),
    }[layout]
    data = _net_bytes(arg)
    net, found = wire.parse_netdef_with_lists(buffer(data))
    assert net == caffe2_pb2.NetDef.FromString(data)
    ((_, field, floats),) = found
    assert field == "floats"
    expected = np.concatenate([first, second])
    np.testing.assert_array_equal(floats.view(np.uint32), expected.view(np.uint32))
    assert parse_netdef(buffer(data), "test") == caffe2_pb2.NetDef.FromString(data)


def test_a_field_hidden_among_unpacked_floats_sends_the_net_to_protobuf() -> None:
    # A 5-byte field between two float runs: the bytes after the first float key are a whole
    # number of 5-byte records ending in a float key, as if all were floats.
    first, second = _weights(3000, 5), _weights(2500, 6)
    hidden = bytes([_I << 3]) + wire.varint(2**21)
    assert len(hidden) == 5
    arg = bytes([_NAME << 3 | 2, 1]) + b"v" + _unpacked(first) + hidden + _unpacked(second)
    data = _net_bytes(arg)
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(data)
    with pytest.raises(wire.WireError):
        wire.parse_netdef_detached(data)
    net = parse_netdef(data, "test")
    assert net == caffe2_pb2.NetDef.FromString(data)
    assert net.op[0].arg[0].i == 2**21
    expected = np.concatenate([first, second])
    got = get_floats(net.op[0].arg[0])
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_repacking_several_lists_and_ops() -> None:
    # Two ops, each with two large lists (unpacked, as Caffe2 writes them) around other fields:
    # the lists move in both directions, so the ops are repacked into new buffers.
    slow = caffe2_pb2.NetDef(name="n")
    arrays = []
    for index in range(2):
        op = slow.op.add(type="GivenTensorFill", output=[f"w{index}"])
        for position in range(2):
            array = _weights(4096 + 1000 * position + index, seed=10 * index + position)
            arrays.append(array)
            op.arg.add(name=f"values{position}", floats=array.tolist())
            op.arg.add(name="between", i=position)
    data = slow.SerializeToString()
    buffer = bytearray(data)
    net, found = wire.parse_netdef_with_lists(buffer)
    assert net == slow
    assert len(found) == 4
    for (arg, _, floats), expected in zip(found, arrays, strict=True):
        np.testing.assert_array_equal(floats.view(np.uint32), expected.view(np.uint32))
        np.testing.assert_array_equal(get_floats(arg).view(np.uint32), expected.view(np.uint32))


def _without_lists(net: caffe2_pb2.NetDef, where: list[tuple[int, int, str]]) -> caffe2_pb2.NetDef:
    """A copy of ``net`` with the fields named by (op index, arg index, field) cleared."""
    copy = caffe2_pb2.NetDef()
    copy.CopyFrom(net)
    for op_index, arg_index, field in where:
        copy.op[op_index].arg[arg_index].ClearField(field)
    return copy


@pytest.mark.parametrize("written_by", ["protobuf", "unframe"])
def test_detached_read_leaves_the_large_lists_beside_the_net(
    written_by: str, tmp_path: Path
) -> None:
    slow, arrays = _net(fast=False)
    if written_by == "protobuf":  # Caffe2's own serialization: unpacked floats, unpacked ints
        data = slow.SerializeToString()
    else:  # packed floats and ints
        write_netdef(_net(fast=True)[0], tmp_path / "n.pb")
        data = (tmp_path / "n.pb").read_bytes()
    released: list[tuple[int, int]] = []
    net, detached = wire.parse_netdef_detached(data, lambda *span: released.append(span))
    expected = {(i, 1): ("floats", arrays[i]) for i in range(2)} | {(3, 0): ("floats", arrays[3])}
    if written_by == "unframe":  # protobuf's unpacked ints are left to protobuf
        expected |= {(4, 0): ("ints", _ints(7000)), (5, 0): ("ints", _ints(7000))}
    assert sorted(detached) == sorted(expected)
    for place, (field, array) in expected.items():
        got_field, got = detached[place]
        assert got_field == field
        np.testing.assert_array_equal(got.view(array.dtype), array)
    # The message is protobuf's own parse, less exactly those lists.
    assert net == _without_lists(slow, [(o, a, f) for (o, a), (f, _) in expected.items()])
    origin = np.frombuffer(data, np.uint8).ctypes.data
    for field, got in detached.values():
        inside = 0 <= got.ctypes.data - origin < len(data)
        # Packed floats are views of the file's bytes; Caffe2's unpacked ones one gathered copy.
        assert inside == (field == "floats" and written_by == "unframe")
    # An op's bytes are released once its lists are copied out (gathered floats, decoded ints),
    # never under a view handed out: here the fills of floats, or those of ints.
    assert len(released) == (3 if written_by == "protobuf" else 2)


def test_a_model_read_detached_imports_the_same_weights(tmp_path: Path) -> None:
    from unframe.backends.caffe2.native.netdef import read_model
    from unframe.frontends.caffe2 import import_caffe2

    predict = caffe2_pb2.NetDef(name="p", external_input=["x", "w"], external_output=["y"])
    predict.op.add(type="Add", input=["x", "w"], output=["y"])
    init = caffe2_pb2.NetDef(name="i")
    weight = _weights(6000, 7)
    fill = init.op.add(type="GivenTensorFill", output=["w"])
    fill.arg.add(name="shape", ints=[6000])
    fill.arg.add(name="values", floats=weight.tolist())
    # A ``dtype`` argument makes GivenTensorFill hold ints: the executor evaluates it, with the
    # values put back into the message.
    typed = init.op.add(type="GivenTensorFill", output=["unused"])
    typed.arg.add(name="shape", ints=[5000])
    typed.arg.add(name="dtype", i=caffe2_pb2.TensorProto.INT64)
    typed.arg.add(name="values", ints=_ints(5000).tolist())
    (tmp_path / "predict_net.pb").write_bytes(predict.SerializeToString())
    (tmp_path / "init_net.pb").write_bytes(init.SerializeToString())
    (tmp_path / "value_info.json").write_text('{"x": [1, [6000]]}')
    detached = read_model(tmp_path, detach_weights=True)
    assert detached.init_net is not None and not detached.init_net.op[0].arg[1].floats
    assert sorted(detached.init_values) == [(0, 1)]
    for model in (detached, read_model(tmp_path)):
        initializers = import_caffe2(model).graph.initializers
        np.testing.assert_array_equal(initializers["w"].const_value.numpy(), weight)
        unused = initializers["unused"].const_value.numpy()
        assert unused.dtype == np.int64
        np.testing.assert_array_equal(unused, _ints(5000))


def test_few_floats_and_many_other_fields_are_left_to_protobuf() -> None:
    small = _net_bytes(bytes([_NAME << 3 | 2, 1]) + b"v" + _unpacked(_weights(100)))
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(small)
    assert parse_netdef(small, "test") == caffe2_pb2.NetDef.FromString(small)
    ints = b"".join(bytes([_INTS << 3]) + wire.varint(v) for v in range(200))
    busy = _net_bytes(bytes([_NAME << 3 | 2, 1]) + b"v" + ints + _unpacked(_weights(5000)))
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(busy)
    assert parse_netdef(busy, "test") == caffe2_pb2.NetDef.FromString(busy)


def test_a_float_key_spelled_in_two_bytes_falls_back_to_protobuf() -> None:
    array = _weights(5000)
    odd = bytes([_FLOATS << 3 | 5 | 0x80, 0x00]) + struct.pack("<f", 1.25)
    data = _net_bytes(bytes([_NAME << 3 | 2, 1]) + b"v" + odd + _unpacked(array))
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(data)
    net = parse_netdef(data, "test")
    assert net == caffe2_pb2.NetDef.FromString(data)
    assert len(net.op[0].arg[0].floats) == 5001


def test_group_wire_types_fall_back_to_protobufs_verdict() -> None:
    group = wire.varint(99 << 3 | 3) + wire.varint(
        99 << 3 | 4
    )  # an empty group of an unknown field
    data = _net_bytes(_unpacked(_weights(5000))) + group
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(data)
    with pytest.raises(BadInputError, match=r"field number\(s\) \[99\]"):
        parse_netdef(data, "test")


def test_truncated_or_overlong_files_give_bad_input(tmp_path: Path) -> None:
    slow, _ = _net(fast=False)
    data = slow.SerializeToString()
    for cut in (3, 40, len(data) // 3, len(data) // 2 + 1, len(data) - 1):
        with pytest.raises(BadInputError, match="truncated or corrupt"):
            parse_netdef(data[:cut], "cut")
    fast, _ = _net(fast=True)
    write_netdef(fast, tmp_path / "packed.pb")
    packed = (tmp_path / "packed.pb").read_bytes()
    for cut in (len(packed) // 2, len(packed) - 5):
        (tmp_path / "cut.pb").write_bytes(packed[:cut])
        with pytest.raises(BadInputError, match="truncated or corrupt"):
            read_netdef(tmp_path / "cut.pb")
    # The first op (after the net's name) claims more bytes than the file holds.
    start = len(b"\n\x04init") + 1
    assert data[start - 1] == _NET_OP << 3 | 2
    width = next(i for i in range(start, len(data)) if data[i] < 0x80) - start + 1
    overlong = data[:start] + b"\xff" * (width - 1) + b"\x7f" + data[start + width :]
    with pytest.raises(DecodeError):
        caffe2_pb2.NetDef.FromString(overlong)
    with pytest.raises(BadInputError, match="truncated or corrupt"):
        parse_netdef(bytearray(overlong), "overlong")


def test_values_changed_after_set_floats_are_written_as_changed(tmp_path: Path) -> None:
    net, arrays = _net(fast=True)
    net.op[0].arg[1].floats[0] = 42.0  # the kept array no longer matches: protobuf's path
    expected, _ = _net(fast=False)
    expected.op[0].arg[1].floats[0] = 42.0
    write_netdef(net, tmp_path / "n.pb")
    assert caffe2_pb2.NetDef.FromString((tmp_path / "n.pb").read_bytes()) == expected
    copy = caffe2_pb2.NetDef()
    copy.CopyFrom(_net(fast=True)[0])  # copied messages are not the ones kept: protobuf's path
    write_netdef(copy, tmp_path / "copy.pb")
    assert caffe2_pb2.NetDef.FromString((tmp_path / "copy.pb").read_bytes()) == _net(False)[0]


def test_arrays_kept_for_a_read_net_go_with_it(tmp_path: Path) -> None:
    slow, _ = _net(fast=False)
    (tmp_path / "n.pb").write_bytes(slow.SerializeToString())
    net = read_netdef(tmp_path / "n.pb")
    kept = [arg for op in net.op for arg in op.arg if id(arg) in values._CACHE._kept]
    assert len(kept) == 3
    del net, kept
    gc.collect()  # the codec's collector callback forgets nets nobody holds
    assert not values._CACHE._owners
    assert all(k.owner is None for k in values._CACHE._kept.values())


def test_arrays_taken_by_the_reader_release_their_net() -> None:
    slow, _ = _net(fast=False)
    net = parse_netdef(slow.SerializeToString(), "test")
    for op in net.op[:4]:
        get_floats(op.arg[1] if op.type == "GivenTensorFill" else op.arg[0])
    assert id(net) not in values._CACHE._owners


def test_a_later_net_written_forgets_the_arrays_of_earlier_unwritten_ones(tmp_path: Path) -> None:
    dry_run, _ = _net(fast=True)
    net, _ = _net(fast=True)
    earlier = [id(arg) for op in dry_run.op for arg in op.arg if id(arg) in values._CACHE._kept]
    assert earlier
    write_netdef(net, tmp_path / "n.pb")
    assert not any(arg_id in values._CACHE._kept for arg_id in earlier)
    write_netdef(dry_run, tmp_path / "dry.pb")  # still correct, through protobuf
    assert caffe2_pb2.NetDef.FromString((tmp_path / "dry.pb").read_bytes()) == _net(False)[0]


def test_packed_ints_beside_unpacked_ones_are_left_to_protobuf() -> None:
    numbers = _ints(5000)
    payload = wire.varints(numbers)
    packed = bytes([_INTS << 3 | 2]) + wire.varint(len(payload)) + payload
    name = bytes([_NAME << 3 | 2, 1]) + b"v"
    data = _net_bytes(name + packed + bytes([_INTS << 3, 5]))
    with pytest.raises(wire.WireError):
        wire.parse_netdef_with_lists(data)
    net = parse_netdef(data, "test")
    assert net == caffe2_pb2.NetDef.FromString(data)
    assert get_ints(net.op[0].arg[0]).tolist() == [*numbers.tolist(), 5]
    # Beside large floats, the floats are still taken and the ints left to protobuf.
    floats = _weights(5000)
    data = _net_bytes(name + packed + bytes([_INTS << 3, 5]) + _unpacked(floats))
    net, found = wire.parse_netdef_with_lists(data)
    assert net == caffe2_pb2.NetDef.FromString(data)
    assert [field for _, field, _ in found] == ["floats"]


def test_protobufs_pure_python_parser_reads_the_packed_file_too(tmp_path: Path) -> None:
    # A second, independent parser implementation: protobuf's own pure-Python one.
    fast, _ = _net(fast=True)
    slow, _ = _net(fast=False)
    write_netdef(fast, tmp_path / "fast.pb")
    (tmp_path / "slow.pb").write_bytes(slow.SerializeToString())
    script = (
        "import sys\n"
        "from google.protobuf.internal import api_implementation\n"
        "from unframe.backends.caffe2.native import caffe2_pb2\n"
        "assert api_implementation.Type() == 'python'\n"
        "fast, slow = (caffe2_pb2.NetDef.FromString(open(p, 'rb').read()) for p in sys.argv[1:])\n"
        "assert fast == slow and len(fast.op[0].arg[1].floats) == 9000\n"
    )
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "fast.pb"), str(tmp_path / "slow.pb")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _weights_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A model whose initializers are large float, double and int64 weights and a small one."""
    from onnx import TensorProto, helper, numpy_helper

    weights = {
        "w": _weights(6000, 8),
        "d": _weights(5000, 9).astype(np.float64),
        "k": _ints(5000),
        "s": _weights(10, 10),
    }
    nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    nodes += [helper.make_node("Identity", [name], [f"{name}_out"]) for name in "dks"]
    graph = helper.make_graph(
        nodes,
        "weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6000])]
        + [
            helper.make_tensor_value_info(
                f"{n}_out", helper.np_dtype_to_tensor_dtype(a.dtype), None
            )
            for n, a in weights.items()
            if n != "w"
        ],
        [numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), weights


def test_a_detached_export_writes_the_nets_a_complete_one_does(tmp_path: Path) -> None:
    import onnx_ir as ir

    from unframe.backends.caffe2.driver import export_model
    from unframe.backends.caffe2.native.executor import run_net
    from unframe.backends.caffe2.native.netdef import Caffe2Model, read_model, write_model

    proto, weights = _weights_model()
    complete = export_model(ir.from_proto(proto))
    detached = export_model(ir.from_proto(proto), detach_weights=True)
    # The three large lists are left out of the messages: nothing else differs.
    assert len(detached.init_values) == 3
    assert detached.predict_net == complete.predict_net
    expected_init = caffe2_pb2.NetDef()
    expected_init.CopyFrom(complete.init_net)
    for (op_index, arg_index), (field, _) in detached.init_values.items():
        expected_init.op[op_index].arg[arg_index].ClearField(field)
    assert detached.init_net == expected_init
    for text in (False, True):
        for name, nets in (("complete", complete), ("detached", detached)):
            model = Caffe2Model(nets.predict_net, nets.init_net, init_values=nets.init_values)
            write_model(model, tmp_path / f"{name}{text}", text=text)
        suffix = ".pbtxt" if text else ".pb"
        written = (tmp_path / f"detached{text}" / f"init_net{suffix}").read_bytes()
        assert written == (tmp_path / f"complete{text}" / f"init_net{suffix}").read_bytes()
    # Protobuf's own parser reads the complete message back; the executor runs it.
    written = (tmp_path / "detachedFalse" / "init_net.pb").read_bytes()
    assert caffe2_pb2.NetDef.FromString(written) == complete.init_net
    read = read_model(tmp_path / "detachedFalse")
    x = _weights(6000, 11)
    outputs = run_net(read.predict_net, read.init_net, {"x": x})
    np.testing.assert_array_equal(outputs["y"], x + weights["w"])
    np.testing.assert_array_equal(outputs["k_out"], weights["k"])
    np.testing.assert_array_equal(outputs["s_out"], weights["s"])
    # Doubles go through Caffe2's float32 Argument (the exporter warns of the rounding).
    np.testing.assert_array_equal(outputs["d_out"], weights["d"].astype(np.float32))


def test_the_exporters_scan_converts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan before a save is the registry and the static type check, never a dry-run export.
    import onnx_ir as ir

    from unframe.backends.caffe2 import context
    from unframe.backends.caffe2.driver import unsupported

    handed: list[int] = []
    for name in ("set_floats", "set_ints"):
        setter = getattr(context, name)
        monkeypatch.setattr(
            context, name, lambda arg, array, s=setter: (handed.append(array.size), s(arg, array))
        )
    assert unsupported(ir.from_proto(_weights_model()[0])) == []
    assert handed == []
