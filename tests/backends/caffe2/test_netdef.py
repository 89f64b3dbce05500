"""NetDef model I/O: round trips, the fixtures' own structure, and every kind of bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.netdef import (
    Caffe2Model,
    data_inputs,
    parse_netdef,
    read_model,
    read_netdef,
    read_value_info,
    write_model,
)
from unframe.shared_ir.errors import BadInputError

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "caffe2"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"third-party Caffe2 fixtures not found at {FIXTURES}"
)


def _small_model() -> Caffe2Model:
    predict = caffe2_pb2.NetDef(name="tiny", external_input=["x", "w"], external_output=["y"])
    op = predict.op.add(type="Mul", input=["x", "w"], output=["y"])
    op.arg.add(name="broadcast", i=1)
    init = caffe2_pb2.NetDef(name="tiny_init")
    fill = init.op.add(type="GivenTensorFill", output=["w"])
    fill.arg.add(name="shape", ints=[2])
    fill.arg.add(name="values", floats=[1.5, -2.0])
    return Caffe2Model(predict, init, {"x": (1, [1, 2])})


@pytest.mark.parametrize("text", [False, True])
def test_write_then_read_round_trips(tmp_path: Path, text: bool) -> None:
    model = _small_model()
    write_model(model, tmp_path / "m", text=text)
    suffix = ".pbtxt" if text else ".pb"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
        [f"init_net{suffix}", f"predict_net{suffix}", "value_info.json"]
    )
    back = read_model(tmp_path / "m")
    assert back.predict_net == model.predict_net
    assert back.init_net == model.init_net
    assert back.value_info == {"x": (1, [1, 2])}
    assert back.directory == tmp_path / "m"
    # A predict net file finds its init net and value_info beside it.
    assert read_model(tmp_path / "m" / f"predict_net{suffix}").init_net == model.init_net


def test_prefixed_file_names_pair_up(tmp_path: Path) -> None:
    model = _small_model()
    (tmp_path / "squeeze_predict_net.pb").write_bytes(model.predict_net.SerializeToString())
    assert model.init_net is not None
    (tmp_path / "squeeze_init_net.pb").write_bytes(model.init_net.SerializeToString())
    assert read_model(tmp_path / "squeeze_predict_net.pb").init_net == model.init_net


def test_missing_init_net_is_an_error_unless_allowed(tmp_path: Path) -> None:
    model = _small_model()
    model.init_net = None
    write_model(model, tmp_path)
    with pytest.raises(BadInputError, match="no init net"):
        read_model(tmp_path)
    assert read_model(tmp_path, allow_missing_init=True).init_net is None


def _check_bad(path: Path, match: str) -> None:
    with pytest.raises(BadInputError, match=match) as info:
        read_netdef(path)
    assert str(path) in str(info.value)  # the message names the file


def test_truncated_netdef(tmp_path: Path) -> None:
    data = _small_model().predict_net.SerializeToString()
    # Cut inside the last field and inside the first op (a cut exactly between two fields
    # leaves a valid, shorter message: no parser can tell).
    for cut in (len(data) - 1, 12):
        (tmp_path / "predict_net.pb").write_bytes(data[:cut])
        _check_bad(tmp_path / "predict_net.pb", "truncated or corrupt")


def test_html_page_in_place_of_init_net(tmp_path: Path) -> None:
    page = b"\n<!DOCTYPE html>\n<html lang='en'><head><title>GitHub</title></head></html>"
    (tmp_path / "init_net.pb").write_bytes(page)
    _check_bad(tmp_path / "init_net.pb", "HTML page")
    write_model(_small_model(), tmp_path / "m")
    (tmp_path / "m" / "init_net.pb").write_bytes(page)
    with pytest.raises(BadInputError, match=r"init_net\.pb.*HTML page"):
        read_model(tmp_path / "m")


def test_git_lfs_pointer(tmp_path: Path) -> None:
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1234\n"
    (tmp_path / "predict_net.pb").write_bytes(pointer)
    _check_bad(tmp_path / "predict_net.pb", "Git LFS pointer")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "predict_net.pb").write_bytes(b"")
    _check_bad(tmp_path / "predict_net.pb", "empty")


def test_other_protobuf_message_is_rejected(tmp_path: Path) -> None:
    # A TensorProto's varint dims (field 1) and data_type (2) mean nothing in a NetDef.
    tensor = caffe2_pb2.TensorProto(dims=[3, 4], data_type=2, int32_data=[1] * 12)
    (tmp_path / "predict_net.pb").write_bytes(tensor.SerializeToString())
    _check_bad(tmp_path / "predict_net.pb", "not a Caffe2 NetDef")


def test_random_bytes_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "predict_net.pb").write_bytes(bytes(range(7, 250)))
    _check_bad(tmp_path / "predict_net.pb", "NetDef")


def test_op_without_type_is_rejected(tmp_path: Path) -> None:
    net = caffe2_pb2.NetDef(name="n")
    net.op.add(input=["x"], output=["y"])
    (tmp_path / "predict_net.pb").write_bytes(net.SerializeToString())
    _check_bad(tmp_path / "predict_net.pb", "operator 0 has no type")


def test_garbled_op_inside_a_subnet_is_rejected(tmp_path: Path) -> None:
    net = caffe2_pb2.NetDef(name="n")
    if_op = net.op.add(type="If", input=["cond", "x"], output=["y"])
    then_net = if_op.arg.add(name="then_net").n
    then_net.op.add(type="Relu", input=["x"], output=["y"])
    then_net.op.add(type="Copy", input=[""], output=["y"])  # an empty blob name
    (tmp_path / "predict_net.pb").write_bytes(net.SerializeToString())
    _check_bad(
        tmp_path / "predict_net.pb",
        re.escape(
            "operator 0 (If) argument 'then_net': operator 1 (Copy) has an empty or garbled blob"
        ),
    )


def test_predict_net_without_ops_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "predict_net.pb").write_bytes(caffe2_pb2.NetDef(name="n").SerializeToString())
    _check_bad(tmp_path / "predict_net.pb", "no operators")


def test_garbage_pbtxt(tmp_path: Path) -> None:
    (tmp_path / "predict_net.pbtxt").write_text('name: "x"\nop { type: "Relu" input: \n')
    _check_bad(tmp_path / "predict_net.pbtxt", "text format")
    (tmp_path / "predict_net.pbtxt").write_text("layer { name: 'conv' }\n")  # a Caffe prototxt
    _check_bad(tmp_path / "predict_net.pbtxt", "text format")


def test_binary_named_pbtxt(tmp_path: Path) -> None:
    (tmp_path / "predict_net.pbtxt").write_bytes(b"\x0a\x02\xff\xfe\x12\x80")
    _check_bad(tmp_path / "predict_net.pbtxt", "not UTF-8")


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a Caffe2 model directory"):
        read_model(tmp_path)
    with pytest.raises(BadInputError, match="no such file"):
        read_model(tmp_path / "absent")


@pytest.mark.parametrize(
    "content",
    ['{"data": [1, [1, "3"]]}', "[1, 2]", '{"data": [1]}', "{not json", '{"x": [true, [1]]}'],
)
def test_bad_value_info(tmp_path: Path, content: str) -> None:
    (tmp_path / "value_info.json").write_text(content)
    with pytest.raises(BadInputError, match="value_info.json"):
        read_value_info(tmp_path / "value_info.json")


def test_parse_accepts_bytes_from_memory() -> None:
    data = _small_model().predict_net.SerializeToString()
    assert parse_netdef(data, "<memory>").op[0].type == "Mul"


# -- the third-party fixtures -------------------------------------------------------------------
@needs_fixtures
def test_lenet_fixture_structure() -> None:
    model = read_model(FIXTURES / "lenet")
    types = [op.type for op in model.predict_net.op]
    assert types == ["Conv", "Add", "MaxPool", "Relu"] * 2 + ["Reshape", "FC", "FC"]
    assert list(model.predict_net.external_output) == ["26"]
    assert model.init_net is not None
    assert {op.type for op in model.init_net.op} == {"GivenTensorFill"}
    assert model.value_info == {}
    assert data_inputs(model) == ["1"]


@needs_fixtures
def test_mtcnn_fixture_structure() -> None:
    model = read_model(FIXTURES / "mtcnn_pnet" / "predict_net.pb")
    types = {op.type for op in model.predict_net.op}
    assert types == {"Conv", "PRelu", "MaxPool", "Softmax"}
    assert model.init_net is not None
    filled = {out for op in model.init_net.op for out in op.output}
    # Every parameter, and a placeholder for the data input that feeding replaces.
    assert filled == set(model.predict_net.external_input)
    assert data_inputs(model) == ["data"]


@needs_fixtures
@pytest.mark.parametrize("name", ["bvlc_alexnet", "resnet50", "vgg19", "zfnet512"])
def test_zoo_fixtures_read_without_weights(name: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no init net"):
        read_model(FIXTURES / "zoo" / name)
    model = read_model(FIXTURES / "zoo" / name, allow_missing_init=True)
    assert model.init_net is None
    ((input_name, (elem_type, dims)),) = model.value_info.items()
    assert (elem_type, dims) == (1, [1, 3, 224, 224])
    assert input_name == model.predict_net.op[0].input[0]
    assert input_name in data_inputs(model)  # with every weight
    # Copying the text net to binary and back keeps it intact.
    write_model(model, tmp_path)
    assert read_model(tmp_path, allow_missing_init=True).predict_net == model.predict_net


@needs_fixtures
def test_fixture_copy_with_truncated_init(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "lenet", tmp_path / "lenet")
    init = tmp_path / "lenet" / "init_net.pb"
    init.chmod(0o644)
    init.write_bytes(init.read_bytes()[:1000])
    with pytest.raises(BadInputError, match=r"init_net\.pb.*truncated"):
        read_model(tmp_path / "lenet")


def test_a_constantfill_in_the_init_net_is_an_input_only_where_named() -> None:
    from unframe.frontends.caffe2 import import_caffe2

    predict = caffe2_pb2.NetDef(external_input=["data", "bias"], external_output=["y"])
    predict.op.add(type="Add", input=["data", "bias"], output=["y"])
    init = caffe2_pb2.NetDef()
    for blob in ("data", "bias"):  # a placeholder for the data, and a real constant
        fill = init.op.add(type="ConstantFill", output=[blob])
        fill.arg.add(name="shape", ints=[2])
        fill.arg.add(name="value", f=3.0)
    model = Caffe2Model(predict, init)
    assert data_inputs(model) == ["data"]  # the first external input
    assert data_inputs(model, named=["bias"]) == ["data", "bias"]
    # The importer takes the same inputs; the constant stays a weight.
    graph = import_caffe2(model).graph
    assert [v.name for v in graph.inputs] == ["data"]
    np.testing.assert_array_equal(graph.initializers["bias"].const_value.numpy(), [3.0, 3.0])
    # Without the placeholder's position, value_info names the data input.
    del predict.external_input[:]
    predict.external_input.extend(["bias", "data"])
    assert data_inputs(Caffe2Model(predict, init, {"data": (1, [2])})) == ["bias", "data"]
    assert data_inputs(Caffe2Model(predict, init)) == ["bias"]
