"""Exit codes of failures that are not the model's: a bug in unframe (5), an exhausted machine (6).

A bug is simulated by swapping one registered converter of a real backend for one that raises
what a bug raises (a TypeError): that is our own code misbehaving, not a mock of a real part.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

import unframe.shared_ir.stats as stats
from unframe.cli.main import cli
from unframe.converters.registry import get_framework
from unframe.shared_ir.errors import ConversionError, ExitCode

from helpers import tiny_model

OPSET = 18


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def swap_relu_converter(
    monkeypatch: pytest.MonkeyPatch, backend: str, raise_error: Callable[[], None]
) -> None:
    """Makes ``backend``'s Relu converter call ``raise_error`` (restored after the test)."""
    registry = get_framework(backend).export_registry()
    assert registry is not None
    real = registry.lookup("Relu", OPSET)
    assert real is not None, f"{backend} converts Relu"
    (entry,) = [e for e in registry._entries[("", "Relu")] if e.function is real]

    def broken_relu(*args: object, **kwargs: object) -> object:
        raise_error()
        return real(*args, **kwargs)

    broken_relu.__name__ = real.__name__
    monkeypatch.setattr(entry, "function", broken_relu)


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def type_error() -> None:
    raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")


@pytest.mark.parametrize(("backend", "suffix"), [("pytorch", ".pt2"), ("caffe2", ".caffe2")])
def test_a_bug_in_a_converter_exits_5_naming_the_node(
    tmp_path, write_model, monkeypatch, backend, suffix
):
    source = write_model(tiny_model(("Relu",), opset=OPSET))
    out = tmp_path / f"out{suffix}"
    swap_relu_converter(monkeypatch, backend, type_error)
    result = invoke("convert", str(source), "-o", str(out), "--to", backend)
    assert result.exit_code == ExitCode.INTERNAL == 5
    line = one_error_line(result)
    assert line.startswith("unframe: internal error: ")
    assert "node 'relu_0' (Relu, opset 18)" in line
    assert "TypeError: unsupported operand type(s)" in line
    assert "this is a bug in unframe, not in your model" in line and "--debug" in line
    assert not out.exists()


def test_debug_adds_the_traceback_of_the_bug(tmp_path, write_model, monkeypatch):
    source = write_model(tiny_model(("Relu",), opset=OPSET))
    swap_relu_converter(monkeypatch, "pytorch", type_error)
    result = invoke("--debug", "convert", str(source), "-o", str(tmp_path / "o.pt2"))
    assert result.exit_code == 5
    assert "Traceback" in result.stderr and "TypeError" in result.stderr


def test_a_deliberate_refusal_inside_a_converter_still_exits_3(tmp_path, write_model, monkeypatch):
    def refuse() -> None:
        raise ConversionError("this Relu variant is not expressible")

    source = write_model(tiny_model(("Relu",), opset=OPSET))
    swap_relu_converter(monkeypatch, "pytorch", refuse)
    result = invoke("convert", str(source), "-o", str(tmp_path / "o.pt2"))
    assert result.exit_code == ExitCode.UNSUPPORTED == 3
    assert "not expressible" in result.stderr and "internal error" not in result.stderr


def test_an_op_without_converter_still_exits_3(tmp_path, write_model):
    model = tiny_model(("Relu", "Sigmoid"), opset=OPSET)
    model.graph.node[1].domain = "com.example"
    model.graph.node[1].op_type = "Frobnicate"
    model.opset_import.add(domain="com.example", version=1)
    source = write_model(model)
    result = invoke("convert", str(source), "-o", str(tmp_path / "o.pt2"), "--to", "pytorch")
    assert result.exit_code == 3
    assert "com.example::Frobnicate" in result.stderr and "internal error" not in result.stderr


def out_of_memory() -> None:
    raise MemoryError()


def no_memory_errno() -> None:
    raise OSError(errno.ENOMEM, "Cannot allocate memory")


@pytest.mark.parametrize("raise_error", [out_of_memory, no_memory_errno])
def test_running_out_of_memory_exits_6_saying_what_to_try(
    tmp_path, write_model, monkeypatch, raise_error
):
    source = write_model(tiny_model(("Relu",), opset=OPSET))
    out = tmp_path / "o.pt2"
    swap_relu_converter(monkeypatch, "pytorch", raise_error)
    result = invoke("convert", str(source), "-o", str(out))
    assert result.exit_code == ExitCode.RESOURCES == 6
    line = one_error_line(result)
    assert line.startswith("unframe: error: ") and "ran out of memory" in line
    assert "more memory" in line and "bug" not in line
    assert not out.exists()


def test_a_full_disk_exits_6_naming_the_file(tmp_path, write_model, monkeypatch):
    out = tmp_path / "o.pt2"

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    source = write_model(tiny_model(("Relu",), opset=OPSET))
    swap_relu_converter(monkeypatch, "pytorch", disk_full)
    result = invoke("convert", str(source), "-o", str(out))
    assert result.exit_code == 6
    line = one_error_line(result)
    assert "no space left" in line and str(out) in line and "free disk space" in line


def test_a_bug_outside_any_converter_exits_5(write_model, monkeypatch):
    def broken_summary(model: object) -> dict[str, object]:
        raise KeyError("opset")

    monkeypatch.setattr(stats, "model_summary", broken_summary)
    result = invoke("inspect", str(write_model(tiny_model())))
    assert result.exit_code == 5
    line = one_error_line(result)
    assert line.startswith("unframe: internal error: unframe inspect failed with KeyError")
    assert "not in your model" in line


def _reshape_of_wrong_size(path: str) -> None:
    """A model every load check accepts that cannot run: size 2 reshaped to [3]."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=1, name="sum"),
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Add", ["r", "s"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([3], np.int64), "shape")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_backend_failing_on_a_model_that_cannot_run_blames_the_input(tmp_path):
    # torch.export refuses the Reshape; onnxruntime refuses the model too, so the input is at
    # fault (exit 2 naming it), not an unsupported feature of PyTorch (exit 3 naming the output).
    source, output = tmp_path / "bad.onnx", tmp_path / "out.pt2"
    _reshape_of_wrong_size(str(source))
    result = invoke("convert", str(source), "-o", str(output))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        f"unframe: error: {source}: the model does not run"
    )
    assert "Traceback" not in result.stderr and not output.exists()
