"""Hostile and broken ``.onnx`` files, through the real ``unframe`` command.

Each file is built with the ``onnx`` package as an attacker or a careless exporter would write it:
external data naming a file outside the model's folder, a FIFO, a directory, offsets past the end,
tensors declaring far more than they hold, a structurally broken graph. Every command must refuse
it with exit 2 and one line naming the file, the tensor and the location, and write nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli
from unframe.shared_ir.io import load_onnx
from unframe.shared_ir.limits import MAX_TENSOR_BYTES_ENV
from unframe.shared_ir.onnx_wire import MappedTensor
from unframe.shared_ir.stats import model_summary

WEIGHT = np.arange(64 * 32, dtype=np.float32).reshape(64, 32) / 100
SECRET = np.full(64 * 32, 7.0, np.float32).tobytes()


def _graph_model(initializers: list[TensorProto], *, out_dtype: int = TensorProto.FLOAT):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", out_dtype, [2, 32])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _external_weight(location: str, *, offset: int | None = None, length: int | None = None):
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[64, 32])
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": offset, "length": length}
    for key, value in entries.items():
        if value is not None:
            tensor.external_data.add(key=key, value=str(value))
    return tensor


def _write(folder: Path, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def refusal(result: Result) -> str:
    """The one error line of a run that exited 2."""
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("unframe: error: ")
    return lines[0]


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A model folder, a secret file beside it (outside it) and an empty folder for outputs."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    out = tmp_path / "out"
    out.mkdir()
    return {"folder": tmp_path / "model", "secret": secret, "out": out}


def _escapes(layout: dict[str, Path]) -> dict[str, str]:
    """How a location may leave the model folder; each name maps to the location written."""
    folder, secret = layout["folder"], layout["secret"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.bin").symlink_to(secret)
    (folder / "sub").symlink_to(secret.parent)
    return {
        "dotdot": "../secret.bin",
        "absolute": str(secret),
        "symlink": "link.bin",
        "symlinked_folder": "sub/secret.bin",
        "deep_dotdot": "a/../../secret.bin",
    }


COMMANDS = {
    "convert_caffe2": lambda src, out: ["convert", src, "-o", str(out / "m.caffe2")],
    "convert_pytorch": lambda src, out: ["convert", src, "-o", str(out / "m.pt2")],
    "convert_onnx": lambda src, out: ["convert", src, "-o", str(out / "m.onnx")],
    "inspect": lambda src, out: ["inspect", src],
    "validate": lambda src, out: ["validate", src, src],
    "run": lambda src, out: ["run", src],
    "roundtrip": lambda src, out: ["roundtrip", src, "--via", "onnx"],
}


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink", "symlinked_folder"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_external_data_outside_the_model_folder_is_refused_by_every_command(
    layout: dict[str, Path], escape: str, command: str
) -> None:
    location = _escapes(layout)[escape]
    source = _write(layout["folder"], _graph_model([_external_weight(location)]))
    line = refusal(invoke(*COMMANDS[command](str(source), layout["out"])))
    assert str(source) in line and "tensor 'W'" in line and repr(location) in line
    assert "leaves the model's folder" in line or "absolute path" in line
    assert list(layout["out"].iterdir()) == []


def test_a_hard_link_into_the_folder_is_refused(layout: dict[str, Path]) -> None:
    folder = layout["folder"]
    folder.mkdir(parents=True)
    os.link(layout["secret"], folder / "w.bin")
    source = _write(folder, _graph_model([_external_weight("w.bin")]))
    for args in (["inspect", str(source)], COMMANDS["convert_caffe2"](str(source), layout["out"])):
        assert "tensor 'W'" in (line := refusal(invoke(*args))) and "2 hard links" in line
    assert list(layout["out"].iterdir()) == []


def test_a_traversal_hidden_behind_a_subfolder_is_refused(layout: dict[str, Path]) -> None:
    location = _escapes(layout)["deep_dotdot"]
    source = _write(layout["folder"], _graph_model([_external_weight(location)]))
    line = refusal(invoke("inspect", str(source)))
    assert "tensor 'W'" in line and "leaves the model's folder" in line


def _legit(folder: Path, location: str) -> Path:
    data = folder / location
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(WEIGHT.tobytes())
    return _write(
        folder, _graph_model([_external_weight(location, offset=0, length=WEIGHT.nbytes)])
    )


@pytest.mark.parametrize("location", ["w.bin", "weights/w.bin", "weights/../w.bin"])
def test_external_data_inside_the_folder_loads_mapped_and_converts(
    layout: dict[str, Path], location: str
) -> None:
    source = _legit(layout["folder"], location)
    model = load_onnx(source)
    weight = model.graph.initializers["W"].const_value
    # A view of the data file's one mapping (pages read only when used), not a copy.
    assert isinstance(weight, MappedTensor)
    assert weight.path == (layout["folder"] / location).resolve()
    model_summary(model)
    np.testing.assert_array_equal(weight.numpy(), WEIGHT)
    target = layout["out"] / "m.pt2"
    result = invoke("convert", str(source), "-o", str(target), "--validate")
    assert result.exit_code == 0, result.output + result.stderr
    assert target.is_file()


def test_a_symlink_that_stays_inside_the_folder_is_accepted(layout: dict[str, Path]) -> None:
    folder = layout["folder"]
    source = _legit(folder, "real.bin")
    (folder / "alias.bin").symlink_to("real.bin")
    aliased = _write(folder, _graph_model([_external_weight("alias.bin")]), "aliased.onnx")
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    expected = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
    result = invoke("inspect", str(aliased))
    assert result.exit_code == 0, result.stderr
    got = load_onnx(aliased).graph.initializers["W"].const_value
    assert got is not None
    np.testing.assert_allclose(x @ got.numpy(), expected, rtol=1e-5)


def test_a_model_folder_of_symlinks_into_a_cache_is_accepted(layout: dict[str, Path]) -> None:
    # As the Hugging Face cache lays models out: the model and its data link into one blob folder.
    blobs = layout["folder"] / "blobs"
    source = _legit(blobs, "data")
    snapshot = layout["folder"] / "snapshots" / "rev"
    snapshot.mkdir(parents=True)
    (snapshot / "model.onnx").symlink_to(source)
    (snapshot / "data").symlink_to(blobs / "data")
    result = invoke("inspect", str(snapshot / "model.onnx"))
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("offset", "length", "says"),
    [
        (10**6, None, "beyond the file's end"),
        (16, WEIGHT.nbytes, "beyond the file's end"),
        (0, 16, f"where its shape and type declare {WEIGHT.nbytes}"),
        (8, None, f"where {WEIGHT.nbytes} are declared"),
    ],
)
def test_offsets_and_lengths_must_lie_inside_the_data_file(
    layout: dict[str, Path], offset: int, length: int | None, says: str
) -> None:
    folder = layout["folder"]
    _legit(folder, "w.bin")
    source = _write(folder, _graph_model([_external_weight("w.bin", offset=offset, length=length)]))
    for args in (["inspect", str(source)], COMMANDS["convert_caffe2"](str(source), layout["out"])):
        line = refusal(invoke(*args))
        assert "tensor 'W'" in line and "'w.bin'" in line and says in line
    assert list(layout["out"].iterdir()) == []


def test_external_data_that_is_a_directory_or_missing_is_refused(layout: dict[str, Path]) -> None:
    folder = layout["folder"]
    (folder / "adir").mkdir(parents=True)
    source = _write(folder, _graph_model([_external_weight("adir")]))
    assert "not a regular file" in refusal(invoke("inspect", str(source)))
    source = _write(folder, _graph_model([_external_weight("nothing.bin")]))
    assert "does not exist" in refusal(invoke("inspect", str(source)))


def _unframe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed command in its own process: a hang fails the test instead of stalling it."""
    command = [sys.executable, "-m", "unframe", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_fifos_are_refused_without_blocking(layout: dict[str, Path]) -> None:
    folder = layout["folder"]
    folder.mkdir(parents=True)
    os.mkfifo(folder / "w.bin")
    source = _write(folder, _graph_model([_external_weight("w.bin")]))
    os.mkfifo(folder / "pipe.onnx")
    for path, names in ((source, "tensor 'W'"), (folder / "pipe.onnx", "pipe.onnx")):
        done = _unframe("convert", str(path), "-o", str(layout["out"] / "m.caffe2"))
        assert done.returncode == 2, done.stderr
        assert names in done.stderr and "not a regular file" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert list(layout["out"].iterdir()) == []


def test_a_model_that_is_a_device_is_refused(layout: dict[str, Path]) -> None:
    folder = layout["folder"]
    folder.mkdir(parents=True)
    (folder / "zero.onnx").symlink_to("/dev/zero")
    done = _unframe("inspect", str(folder / "zero.onnx"), timeout=60)
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr


def _inline(dims: list[int], data: bytes, data_type: int = TensorProto.FLOAT) -> TensorProto:
    return TensorProto(name="W", data_type=data_type, dims=dims, raw_data=data)


def test_a_tensor_declaring_a_trillion_elements_over_16_bytes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _write(tmp_path, _graph_model([_inline([10**12], b"\0" * 16)]))
    line = refusal(invoke("inspect", str(source)))
    assert "tensor 'W' declares 3.6 TiB" in line and MAX_TENSOR_BYTES_ENV in line
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, str(1 << 60))
    line = refusal(invoke("convert", str(source), "-o", str(tmp_path / "m.pt2")))
    assert "tensor 'W' holds 16 bytes of raw data" in line and "4000000000000" in line
    assert not (tmp_path / "m.pt2").exists()


def test_a_shape_of_2_32_by_2_32_does_not_wrap_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2**32 * 2**32 * 4 bytes wraps to 0 in 64-bit arithmetic, which an empty buffer would match.
    source = _write(tmp_path, _graph_model([_inline([2**32, 2**32], b"")]))
    assert "tensor 'W' declares" in refusal(invoke("inspect", str(source)))
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, str(1 << 80))
    line = refusal(invoke("inspect", str(source)))
    assert "holds 0 bytes of raw data" in line and str(2**66) in line


def test_the_limit_is_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _write(tmp_path, _graph_model([numpy_helper.from_array(WEIGHT, "W")]))
    assert invoke("inspect", str(source)).exit_code == 0
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, str(WEIGHT.nbytes - 1))
    line = refusal(invoke("inspect", str(source)))
    assert f"({WEIGHT.nbytes - 1} bytes)" in line and MAX_TENSOR_BYTES_ENV in line


def test_an_undefined_data_type_is_refused(tmp_path: Path) -> None:
    source = _write(tmp_path, _graph_model([_inline([64, 32], WEIGHT.tobytes(), data_type=0)]))
    for args in (["inspect", str(source)], ["convert", str(source), "-o", str(tmp_path / "o.pt2")]):
        line = refusal(invoke(*args))
        assert str(source) in line and "Bitwidth" not in line
    assert not (tmp_path / "o.pt2").exists()


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "empty.onnx"
    source.write_bytes(b"")
    assert "empty" in refusal(invoke("inspect", str(source)))


def test_a_broken_input_is_blamed_on_the_input_not_the_output(tmp_path: Path) -> None:
    # MatMul of floats declared to give int64: onnx's checker refuses it, as onnxruntime does.
    broken = _graph_model([numpy_helper.from_array(WEIGHT, "W")], out_dtype=TensorProto.INT64)
    with pytest.raises(Exception, match="inconsistent|type"):
        ort.InferenceSession(broken.SerializeToString())
    source = _write(tmp_path, broken)
    for name in ("o.onnx", "o.pt2", "o.caffe2"):
        line = refusal(invoke("convert", str(source), "-o", str(tmp_path / name)))
        assert line.startswith(f"unframe: error: {source}: not a valid ONNX model")
        assert not (tmp_path / name).exists()


def test_outputs_without_a_shape_are_accepted_in_and_out(tmp_path: Path) -> None:
    # onnx.checker wants shapes on a main graph's outputs; onnxruntime and exporters do without.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    source = _write(tmp_path, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    target = tmp_path / "out.onnx"
    result = invoke("convert", str(source), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    x = np.array([[-1, 0, 2], [3, -4, 5]], np.float32)
    (got,) = ort.InferenceSession(str(target)).run(None, {"x": x})
    np.testing.assert_array_equal(got, np.maximum(x, 0))


# -- found by the fuzz (tests/shared_ir/test_fuzz_onnx.py): accepted here, refused by onnxruntime --


def _oracle_refuses(path: Path) -> None:
    """onnxruntime, the oracle, refuses the file too: a refusal here is right, not too strict."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - onnxruntime's own error classes
        ort.InferenceSession(str(path))


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([("location", "w.bin"), ("lencth", "8192")], "unknown external data key(s) 'lencth'"),
        ([("offset", "0")], "external data without a location"),
        ([("location", "w.bin"), ("location", "w.bin")], "key(s) 'location' given more than once"),
    ],
    ids=["unknown-key", "no-location", "repeated-location"],
)
def test_malformed_external_data_entries_are_refused(
    tmp_path: Path, entries: list[tuple[str, str]], why: str
) -> None:
    (tmp_path / "w.bin").write_bytes(WEIGHT.tobytes())
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[64, 32])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in entries:
        tensor.external_data.add(key=key, value=value)
    source = _write(tmp_path, _graph_model([tensor]))
    _oracle_refuses(source)
    for args in (
        ["inspect", str(source)],
        ["convert", str(source), "-o", str(tmp_path / "o.onnx")],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, result.stderr
        # onnx_ir warns of an unknown key while reading, before the check refuses it.
        lines = [s for s in result.stderr.splitlines() if not s.startswith("unframe: warning: ")]
        assert len(lines) == 1 and lines[0].startswith("unframe: error: "), result.stderr
        assert f"{source}: tensor 'W': " in lines[0] and why in lines[0], lines[0]
    assert not (tmp_path / "o.onnx").exists()


def _relu_graph(nodes: list[onnx.NodeProto], **kwargs: object) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        **kwargs,  # type: ignore[arg-type]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("where", ["output", "value_info"])
def test_a_tensor_type_without_an_element_type_is_refused(tmp_path: Path, where: str) -> None:
    relus = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    if where == "output":
        model = _relu_graph(relus)
        model.graph.output[0].type.tensor_type.elem_type = TensorProto.UNDEFINED
        name = "y"
    else:
        untyped = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])
        untyped.type.tensor_type.elem_type = TensorProto.UNDEFINED
        model = _relu_graph(relus, value_info=[untyped])
        name = "a"
    source = _write(tmp_path, model)
    _oracle_refuses(source)
    line = refusal(invoke("inspect", str(source)))
    assert f"value {name!r} of graph 'g' is declared a tensor with no element type" in line, line


def test_two_nodes_with_one_name_are_refused(tmp_path: Path) -> None:
    relus = [
        helper.make_node("Relu", ["x"], ["a"], name="twice"),
        helper.make_node("Relu", ["a"], ["y"], name="twice"),
    ]
    source = _write(tmp_path, _relu_graph(relus))
    _oracle_refuses(source)
    line = refusal(invoke("convert", str(source), "-o", str(tmp_path / "o.onnx")))
    assert f"{source}: not a valid ONNX model: two nodes of graph 'g' are named 'twice'" in line
    assert not (tmp_path / "o.onnx").exists()


def _if_model(condition_type: int, condition_shape: list[int]) -> onnx.ModelProto:
    def branch(name: str) -> onnx.GraphProto:
        output = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [2])
        return helper.make_graph(
            [helper.make_node("Identity", ["x"], [f"{name}_y"])], name, [], [output]
        )

    graph = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["c"],
                ["y"],
                name="pick",
                then_branch=branch("then"),
                else_branch=branch("else"),
            )
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", condition_type, condition_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_an_if_condition_that_is_not_one_boolean_is_refused(tmp_path: Path) -> None:
    x = np.ones(2, np.float32)
    one = _write(tmp_path / "one", _if_model(TensorProto.BOOL, [1]))
    got = ort.InferenceSession(str(one)).run(None, {"x": x, "c": np.array([True])})[0]
    np.testing.assert_array_equal(got, x)  # the shape of condition onnxruntime runs
    assert invoke("inspect", str(one)).exit_code == 0
    two = _write(tmp_path / "two", _if_model(TensorProto.BOOL, [2]))
    with pytest.raises(Exception, match="exactly one element"):  # noqa: PT011 - onnxruntime's own error class
        ort.InferenceSession(str(two)).run(None, {"x": x, "c": np.array([True, False])})
    line = refusal(invoke("convert", str(two), "-o", str(tmp_path / "o.onnx")))
    assert (
        f"{two}: not a valid ONNX model: node 'pick' (If): its condition 'c' is bool[2], " in line
    )
    assert "not one boolean" in line


def test_an_input_declaring_more_than_the_limit_is_refused_before_allocating(
    tmp_path: Path,
) -> None:
    """A graph input of 2^32 + 1 float32: example inputs for validation must not allocate 16 GiB."""
    model = _relu_graph([helper.make_node("Relu", ["x"], ["y"])])
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 2**32 + 1
    source = _write(tmp_path, model)
    assert invoke("inspect", str(source)).exit_code == 0  # nothing is allocated to inspect it
    out = tmp_path / "o.onnx"
    line = refusal(invoke("convert", str(source), "-o", str(out), "--validate"))
    assert "input 'x' (shape [4294967297], float32) declares 16.0 GiB" in line, line
    assert MAX_TENSOR_BYTES_ENV in line


def test_a_failing_torch_export_logs_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """torch.export logs the graph it failed on (56 lines); the user gets unframe's one line."""
    pytest.importorskip("torch", reason="the pytorch extra is not installed (the test writes .pt2)")
    branch = _if_model(TensorProto.BOOL, []).graph.node[0]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["c"]),
            branch,
            helper.make_node("NonZero", ["y"], ["nz"]),
            helper.make_node("Reshape", ["nz", "flat"], ["shape"]),
            helper.make_node("Reshape", ["x", "shape"], ["z"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
        ],
    )
    source = _write(tmp_path, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    capfd.readouterr()
    result = invoke("convert", str(source), "-o", str(tmp_path / "o.pt2"))
    assert result.exit_code != 0
    assert "torch.export failed: Could not guard on data-dependent expression" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert capfd.readouterr() == ("", "")
    assert not (tmp_path / "o.pt2").exists()
