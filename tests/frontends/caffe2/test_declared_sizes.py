"""Sizes a NetDef declares are checked before anything is allocated; inspecting allocates none."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import read_model
from unframe.cli.main import cli
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.converters.framework import ConvertOptions
from unframe.shared_ir.errors import BadInputError, ExitCode, LimitExceededError
from unframe.shared_ir.limits import MAX_TENSOR_BYTES_ENV


def _pair(tmp_path: Path, fill: caffe2_pb2.OperatorDef) -> Path:
    """A model directory: ``fill`` writes ``w`` in the init net, the predict net adds x + w."""
    directory = tmp_path / "model"
    directory.mkdir(parents=True)
    init = caffe2_pb2.NetDef(op=[fill])
    predict = caffe2_pb2.NetDef(external_input=["x", "w"], external_output=["y"])
    predict.op.add(type="Add", input=["x", "w"], output=["y"])
    (directory / "init_net.pb").write_bytes(init.SerializeToString())
    (directory / "predict_net.pb").write_bytes(predict.SerializeToString())
    return directory


def _constant_fill(*shape: int) -> caffe2_pb2.OperatorDef:
    fill = caffe2_pb2.OperatorDef(type="ConstantFill", output=["w"])
    fill.arg.add(name="shape", ints=list(shape))
    fill.arg.add(name="value", f=2.0)
    return fill


def test_inspecting_a_huge_constant_fill_allocates_nothing(tmp_path: Path) -> None:
    # 61 bytes of nets declaring a 50000 x 50000 float32 weight (9.3 GiB).
    directory = _pair(tmp_path, _constant_fill(50000, 50000))
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cli, ["inspect", str(directory), "--json"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert '"parameters": 2500000000' in result.output
    assert peak < 200 * 2**20


def test_a_constant_fill_is_built_when_read(tmp_path: Path) -> None:
    directory = _pair(tmp_path, _constant_fill(2, 3))
    model = Caffe2Framework().load(directory, ConvertOptions())
    weight = model.graph.initializers["w"].const_value
    assert weight is not None
    np.testing.assert_array_equal(weight.numpy(), np.full((2, 3), 2.0, np.float32))


def test_a_fill_over_the_limit_is_refused_with_how_to_raise_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "1000")
    directory = _pair(tmp_path, _constant_fill(50000, 50000))
    result = CliRunner().invoke(cli, ["inspect", str(directory)])
    assert result.exit_code == ExitCode.BAD_INPUT
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"unframe: error: {directory}: init net op 0 (ConstantFill)")
    assert "9.3 GiB" in line and MAX_TENSOR_BYTES_ENV in line
    # Random fills go through the executor, which checks the same limit before drawing.
    gaussian = caffe2_pb2.OperatorDef(type="GaussianFill", output=["w"])
    gaussian.arg.add(name="shape", ints=[100, 100])
    with pytest.raises(LimitExceededError, match=MAX_TENSOR_BYTES_ENV):
        run_net(caffe2_pb2.NetDef(op=[gaussian], external_output=["w"]), None, {})
    directory = _pair(tmp_path / "random", gaussian)
    with pytest.raises(LimitExceededError, match="init net op 0 \\(GaussianFill\\)"):
        Caffe2Framework().load(directory, ConvertOptions())


def test_given_values_must_fill_the_declared_shape(tmp_path: Path) -> None:
    # 10^12 elements declared, 3 given: refused by counting, before any allocation.
    fill = caffe2_pb2.OperatorDef(type="GivenTensorFill", output=["w"])
    fill.arg.add(name="shape", ints=[10**6, 10**6])
    fill.arg.add(name="values", floats=[1.0, 2.0, 3.0])
    directory = _pair(tmp_path, fill)
    with pytest.raises(BadInputError, match="fills 3 values into shape \\[1000000, 1000000\\]"):
        Caffe2Framework().load(directory, ConvertOptions())
    assert read_model(directory).init_net is not None
