"""Bad Caffe2 input: one clear error naming the file, op index, op type and blob; exit 2 or 3."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from netdef_builders import compare, model, op

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.netdef import Caffe2Model, read_model, write_model
from unframe.cli.main import cli
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import (
    BadInputError,
    ExitCode,
    UnsupportedOpsError,
)


def _write(tmp_path: Path, c2: object) -> Path:
    directory = tmp_path / "model"
    write_model(c2, directory)  # type: ignore[arg-type]
    return directory


def test_blob_read_before_it_is_written(tmp_path: Path) -> None:
    c2 = model(
        [op("Relu", ["x"], ["y"]), op("Add", ["y", "ghost"], ["z"])], {}, {"x": [1, 2]}, ["z"]
    )
    c2.predict_net.external_input[:] = ["x"]
    with pytest.raises(BadInputError) as caught:
        Caffe2Framework().load(_write(tmp_path, c2), ConvertOptions())
    text = str(caught.value)
    assert "op 1 (Add)" in text and "'ghost'" in text and str(tmp_path) in text
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_an_argument_caffe2_does_not_read_is_ignored_with_one_warning() -> None:
    # Caffe2's operators look up only the arguments they read; the rest never mattered.
    relu = op("Relu", ["x"], ["y"], flavour=3)
    relu.name = "act"
    c2 = model([relu], {}, {"x": [1, 2]}, ["y"])
    with pytest.warns(UserWarning) as caught:
        compare(c2, {"x": np.array([[-1.0, 2.0]], np.float32)})
    (warning,) = [w for w in caught if "flavour" in str(w.message)]
    assert str(warning.message) == (
        "predict_net: op 0 (Relu) 'act': ignored argument(s) 'flavour': "
        "Caffe2's Relu does not read them"
    )


def test_every_unknown_op_type_is_listed_at_once() -> None:
    ops = [op("Relu", ["x"], ["a"]), op("Frobnicate", ["a"], ["b"]), op("Wibble", ["b"], ["c"])]
    with pytest.raises(UnsupportedOpsError) as caught:
        import_caffe2(model(ops, {}, {"x": [1, 2]}, ["c"]))
    assert {o.op_type for o in caught.value.ops} == {"Frobnicate", "Wibble"}
    assert caught.value.exit_code == ExitCode.UNSUPPORTED


def test_truncated_predict_net(tmp_path: Path) -> None:
    c2 = model([op("Relu", ["x"], ["y"])], {"w": np.ones(3, np.float32)}, {"x": [1, 2]}, ["y"])
    directory = _write(tmp_path, c2)
    data = (directory / "predict_net.pb").read_bytes()
    (directory / "predict_net.pb").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="predict_net.pb"):
        Caffe2Framework().load(directory, ConvertOptions())


def test_onnx_file_named_predict_net(tmp_path: Path) -> None:
    import onnx

    directory = tmp_path / "model"
    directory.mkdir()
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph([node], "g", [], [])
    (directory / "predict_net.pb").write_bytes(onnx.helper.make_model(graph).SerializeToString())
    (directory / "init_net.pb").write_bytes(b"")
    with pytest.raises(BadInputError, match="predict_net.pb"):
        Caffe2Framework().load(directory, ConvertOptions())


def test_missing_init_net(tmp_path: Path) -> None:
    c2 = model([op("Relu", ["x"], ["y"])], {}, {"x": [1, 2]}, ["y"])
    c2.init_net = None
    directory = _write(tmp_path, c2)
    with pytest.raises(BadInputError, match="init net"):
        read_model(directory)


def test_a_shape_needed_from_a_shapeless_input_says_how_to_give_it_with_exit_2() -> None:
    predict = caffe2_pb2.NetDef(external_input=["x", "b"], external_output=["y"])
    add = predict.op.add(type="Add", input=["x", "b"], output=["y"])
    add.arg.add(name="broadcast", i=1)
    add.arg.add(name="axis", i=1)
    init = caffe2_pb2.NetDef()
    fill = init.op.add(type="GivenTensorFill", output=["b"])
    fill.arg.add(name="shape", ints=[3])
    fill.arg.add(name="values", floats=[1.0, 2.0, 3.0])
    # It is missing input, not an unsupported op: exit 2, saying how to give it.
    with pytest.raises(BadInputError) as caught:
        import_caffe2(Caffe2Model(predict, init))
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert str(caught.value) == (
        "predict_net: Add: op 0 (Add): needs the rank of blob 'x', which is unknown (input(s) "
        "'x' have no shape: give each with --input NAME=DIMS (e.g. --input x=1,3,224,224) or a "
        "value_info.json beside the nets)"
    )
    # With the shape given, the same net imports.
    shaped = import_caffe2(Caffe2Model(predict, init, {"x": (1, [2, 3, 4])}))
    assert [d for d in shaped.graph.outputs[0].shape] == [2, 3, 4]


def test_every_refused_op_is_listed_at_once_and_what_depends_on_one_is_skipped() -> None:
    predict = caffe2_pb2.NetDef(external_input=["x"], external_output=["a", "c"])
    refused = predict.op.add(type="UniformIntFill", output=["r"], name="random_ints")
    refused.arg.add(name="shape", ints=[3])
    predict.op.add(type="Add", input=["x", "r"], output=["a"])  # reads a refused op's output
    predict.op.add(type="Relu", input=["x"], output=["b"])
    late = predict.op.add(type="UniformIntFill", output=["c"])
    late.arg.add(name="shape", ints=[3])
    with pytest.raises(UnsupportedOpsError) as caught:
        import_caffe2(Caffe2Model(predict, None, {"x": (1, [3])}))
    assert [(o.node, o.op_type) for o in caught.value.ops] == [
        ("random_ints", "UniformIntFill"),
        ("op 3", "UniformIntFill"),
    ]
    assert caught.value.exit_code == ExitCode.UNSUPPORTED
    # Bad input still stops at once, whatever was refused before it.
    predict.op.add(type="Relu", input=["nowhere"], output=["d"])
    with pytest.raises(BadInputError, match="op 4 \\(Relu\\): reads blob 'nowhere'"):
        import_caffe2(Caffe2Model(predict, None, {"x": (1, [3])}))


@pytest.mark.parametrize("damage", ["truncated", "html"])
def test_a_broken_init_net_through_the_weight_reading_path(tmp_path: Path, damage: str) -> None:
    # The adapter reads init nets with their weights left out of protobuf (detach_weights);
    # a broken one still gives one clear error naming the file, exit 2.
    weight = np.arange(6000, dtype=np.float32)
    c2 = model([op("Add", ["x", "w"], ["y"])], {"w": weight}, {"x": [6000]}, ["y"])
    directory = _write(tmp_path, c2)
    init = directory / "init_net.pb"
    # As Caffe2 writes it: protobuf's own serialization, unpacked floats.
    data = caffe2_pb2.NetDef.FromString(init.read_bytes()).SerializeToString()
    if damage == "truncated":
        init.write_bytes(data[: len(data) - 7])
        expected = r"init_net\.pb.*truncated or corrupt"
    else:
        init.write_bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>")
        expected = r"init_net\.pb.*HTML page"
    with pytest.raises(BadInputError, match=expected) as caught:
        Caffe2Framework().load(directory, ConvertOptions())
    assert caught.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ([99, [1, 2]], "entry 'x': element type 99 is not an ONNX TensorProto data type"),
        ([0, [1, 2]], "entry 'x': element type 0 is not an ONNX TensorProto data type"),
        ([1, [1, -2]], "entry 'x': shape \\[1, -2\\] has a negative dimension"),
    ],
)
def test_a_bad_value_info_names_the_file_and_blob(
    tmp_path: Path, entry: list[object], expected: str
) -> None:
    c2 = model([op("Relu", ["x"], ["y"])], {}, {"x": [1, 2]}, ["y"])
    directory = _write(tmp_path, c2)
    (directory / "value_info.json").write_text(json.dumps({"x": entry}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["inspect", str(directory)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    (line,) = result.output.strip().splitlines()
    assert re.fullmatch(
        f"unframe: error: {re.escape(str(directory))}/value_info.json: value_info {expected}.*",
        line,
    )


def test_a_missing_value_info_when_converting_says_how_to_give_the_shape(tmp_path: Path) -> None:
    predict = caffe2_pb2.NetDef(external_input=["x", "b"], external_output=["y"])
    add = predict.op.add(type="Add", input=["x", "b"], output=["y"])
    add.arg.add(name="broadcast", i=1)
    add.arg.add(name="axis", i=1)
    c2 = model([], {"b": np.ones(3, np.float32)}, {}, ["y"])
    c2.predict_net = predict
    directory = _write(tmp_path, c2)
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(directory), "-o", str(out)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    (line,) = result.output.strip().splitlines()
    assert (
        "needs the rank of blob 'x'" in line and "--input x=" in line and "value_info.json" in line
    )
    assert not out.exists()
    given = CliRunner().invoke(cli, ["convert", str(directory), "-o", str(out), "--input", "x=2,3"])
    assert given.exit_code == 0, given.output


def test_value_info_minus_one_is_an_unknown_size_as_unframe_writes_it(tmp_path: Path) -> None:
    # The exporter writes -1 for a symbolic dimension: reading it back must work.
    c2 = model([op("Relu", ["x"], ["y"])], {}, {"x": [1, 2]}, ["y"])
    directory = _write(tmp_path, c2)
    (directory / "value_info.json").write_text('{"x": [1, [-1, 2]]}', encoding="utf-8")
    imported = Caffe2Framework().load(directory, ConvertOptions())
    assert imported.graph.inputs[0].shape is not None
    assert imported.graph.inputs[0].shape[1] == 2
    assert not isinstance(imported.graph.inputs[0].shape[0], int)


# -- arguments and weights that only an export would have tripped on: blamed on the input -----


def _refused(tmp_path: Path, c2: object, *extra: str) -> str:
    """Converts ``c2`` to .pt2 (the export that tripped on these first); the one error line."""
    directory = _write(tmp_path, c2)
    out = tmp_path / "out.pt2"
    result = CliRunner().invoke(cli, ["convert", str(directory), "-o", str(out), *extra])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("unframe: error:")]
    assert len(errors) == 1 and str(directory) in errors[0] and str(out) not in errors[0], errors
    assert "Traceback" not in result.output
    assert not out.exists()
    return errors[0]


def _pool_net(**args: object) -> object:
    return model([op("MaxPool", ["x"], ["y"], **args)], {}, {"x": [1, 2, 4, 4]}, ["y"])


def _conv_net(weight: np.ndarray, **args: object) -> object:
    ops = [op("Conv", ["x", "w", "b"], ["y"], **args)]
    weights = {"w": weight, "b": np.zeros(weight.shape[0], np.float32)}
    return model(ops, weights, {"x": [1, 3, 6, 6]}, ["y"])


@pytest.mark.parametrize(
    ("c2", "reason"),
    [
        (_pool_net(kernel=2, pad=2**32 + 1), r"pad 4294967297 .*below 2\*\*31"),
        (_pool_net(kernel=0), r"kernel 0 .*must be positive"),
        (_pool_net(kernel=2, stride=0), r"stride 0 .*must be positive"),
        (_pool_net(kernel=2, pads=[0, 0, -1, 0]), r"pad -1 .*must be non-negative"),
        (_pool_net(kernel=2, pad=2), r"pads \[2, 2, 2, 2\] are not all smaller than the pooling"),
        (_pool_net(kernel=5, stride=2), r"window \[5, 5\].* larger than the input's spatial size"),
        (_conv_net(np.ones((4, 3, 3, 3), np.float32), dilation=-1), r"dilation -1 .*positive"),
        (_conv_net(np.ones((4, 3, 3, 3), np.float32), dilation=4), r"window \[3, 3\] \(dilat"),
        (_conv_net(np.ones((4, 2, 3, 3), np.float32)), r"weight 'w' of shape \[4, 2, 3, 3\]"),
        (_conv_net(np.ones((4, 3, 3, 3), np.float32), group=0), r"group 0 must be positive"),
    ],
    ids=[
        "pool-pad-2**32+1", "pool-kernel-0", "pool-stride-0", "pool-pad-negative",
        "pool-pad-past-window", "pool-window-past-input", "conv-dilation-negative",
        "conv-dilated-window-past-input", "conv-weight-channels", "conv-group-0",
    ],
)  # fmt: skip
def test_a_window_argument_caffe2_refuses_is_blamed_on_the_input(
    tmp_path: Path, c2: object, reason: str
) -> None:
    line = _refused(tmp_path, c2)
    op_type = "MaxPool" if "MaxPool" in line else "Conv"
    assert f"op 0 ({op_type})" in line and re.search(reason, line), line


def test_an_fc_weight_that_does_not_fit_its_input_is_blamed_on_the_input(tmp_path: Path) -> None:
    # x is (2, 12): K = 12, but the weight (3, 8) takes 8 inputs per output.
    weights = {"fw": np.ones((3, 8), np.float32), "fb": np.zeros(3, np.float32)}
    c2 = model([op("FC", ["x", "fw", "fb"], ["y"])], weights, {"x": [2, 12]}, ["y"])
    line = _refused(tmp_path, c2)
    assert "op 0 (FC)" in line and "8 inputs per output, not 12" in line, line


def test_a_weight_the_init_net_lost_is_blamed_on_the_input(tmp_path: Path) -> None:
    c2 = _conv_net(np.ones((4, 3, 3, 3), np.float32))
    init = c2.init_net  # type: ignore[attr-defined]
    kept = [fill_op for fill_op in init.op if fill_op.output[0] != "w"]
    del init.op[:]
    init.op.extend(kept)
    line = _refused(tmp_path, c2)
    assert "op 0 (Conv)" in line and "'w' is not filled by the init net" in line, line
    assert "--input w=" in line


def test_a_graph_that_fails_onnx_s_checks_is_blamed_on_the_input(tmp_path: Path) -> None:
    # No converter check looks at Add's broadcast; ONNX's strict shape inference refuses (2, 3)
    # plus (4,), as numpy does.
    with pytest.raises(ValueError, match="broadcast"):
        np.ones((2, 3)) + np.ones(4)
    c2 = model([op("Add", ["x", "b"], ["y"])], {"b": np.ones(4, np.float32)}, {"x": [2, 3]}, ["y"])
    line = _refused(tmp_path, c2)
    assert "is inconsistent:" in line and "Add" in line, line


def test_the_same_arguments_in_range_still_convert(tmp_path: Path) -> None:
    directory = _write(tmp_path, _pool_net(kernel=2, pad=1, stride=2, dilation=1))
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["convert", str(directory), "-o", str(out)])
    assert result.exit_code == 0, result.output
