"""The valid models the fuzz mutates, one ``Importer`` each, with the oracle that judges an exit 0."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fuzzing.cases import CaseFiles, Importer
from fuzzing.mutations import BYTES, PROTOBUF, TEXT, ZIP

# -- the seed models ----------------------------------------------------------------------------


def _onnx_model() -> Any:
    """A Conv, a Relu and an If whose branches read outer values, with five initializers."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def branch(name: str, node: Any) -> Any:
        out = helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)
        return helper.make_graph([node], name, [], [out])

    then_branch = branch("then", helper.make_node("Mul", ["r", "scale"], ["t"], name="mul"))
    else_branch = branch("else", helper.make_node("Neg", ["r"], ["e"], name="neg"))
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1] * 4, name="conv"
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"),
        helper.make_node("Greater", ["m", "zero"], ["cond"], name="gt"),
        helper.make_node(
            "If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch, name="if"
        ),
        helper.make_node("Add", ["y", "shift"], ["out"], name="add"),
    ]
    initializers = {
        "w": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(2).astype(np.float32),
        "scale": np.float32(2.0).reshape(()),
        "zero": np.zeros((), np.float32),
        "shift": rng.standard_normal((1, 2, 1, 1)).astype(np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "seed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 4, 4])],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _onnx_oracle(files: CaseFiles) -> str | None:
    """Exit 0 is right only when onnxruntime takes the input; a written ``.onnx`` must load in
    onnxruntime too and give the input's outputs where both run. onnx's checker is not the oracle:
    unframe, as onnxruntime, accepts a graph input or output without a shape, which it refuses."""
    import numpy as np
    import onnxruntime as ort

    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4  # its log lines would pass for unframe's own output
    quiet_run = ort.RunOptions()
    quiet_run.log_severity_level = 4
    try:
        source = ort.InferenceSession(str(files.source), quiet, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - any refusal is the oracle's answer
        return f"the input is invalid: {type(error).__name__}: {str(error)[:300]}"
    if files.output is None or files.output.suffix != ".onnx":
        return None
    try:
        written = ort.InferenceSession(str(files.output), quiet, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001
        return f"the written ONNX does not load in onnxruntime: {str(error)[:300]}"
    shapes = {i.name: i.shape for i in source.get_inputs() if i.type == "tensor(float)"}
    if len(shapes) != len(source.get_inputs()) or not all(
        all(isinstance(d, int) and 0 < d < 64 for d in shape) for shape in shapes.values()
    ):
        return None  # inputs the oracle does not make up
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    try:
        want = source.run(None, feeds, quiet_run)
    except Exception:  # noqa: BLE001 - a mutated model that fails at run time: nothing to compare
        return None
    try:
        got = written.run(None, feeds, quiet_run)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)
    except Exception as error:  # noqa: BLE001
        return f"the written ONNX differs from the input in onnxruntime: {str(error)[:300]}"
    return None


_ONNX_COMMANDS = (
    ("convert", "{src}", "-o", "{out}.onnx"),
    ("convert", "{src}", "-o", "{out}.caffe2"),
    ("inspect", "{src}"),
    ("convert", "{src}", "-o", "{out}.pt2"),
)


def onnx_importer(external: bool = False) -> Importer:
    """A small ``.onnx``; with ``external`` its initializers lie in ``weights.bin`` beside it."""
    import onnx

    model = _onnx_model()
    if not external:
        return Importer(
            "onnx",
            {"model.onnx": model.SerializeToString()},
            "model.onnx",
            {"model.onnx": PROTOBUF},
            _ONNX_COMMANDS,
            _onnx_oracle,
        )
    from onnx.external_data_helper import convert_model_to_external_data

    convert_model_to_external_data(model, location="weights.bin", size_threshold=0)
    folder = Path(_scratch_dir())
    try:
        onnx.save_model(model, folder / "model.onnx")
        files = {name: (folder / name).read_bytes() for name in ("model.onnx", "weights.bin")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Importer(
        "onnx-external",
        files,
        "model.onnx",
        {"model.onnx": PROTOBUF, "weights.bin": BYTES},
        _ONNX_COMMANDS,
        _onnx_oracle,
    )


def _scratch_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="unframe-fuzz-seed-")


def _netdef_oracle(files: CaseFiles) -> str | None:
    """Exit 0 is right only when Google's protobuf parser reads every file as a NetDef (and a
    text net as text) and value_info.json is JSON."""
    from google.protobuf import text_format

    from unframe.backends.caffe2.native import caffe2_pb2

    try:
        for path in files.source.iterdir():
            if path.suffix == ".pb":
                caffe2_pb2.NetDef().ParseFromString(path.read_bytes())
            elif path.suffix == ".pbtxt":
                text_format.Parse(path.read_text(encoding="utf-8"), caffe2_pb2.NetDef())
            elif path.name == "value_info.json":
                json.loads(path.read_text(encoding="utf-8"))
    except Exception as error:  # noqa: BLE001 - any refusal is the oracle's answer
        return f"the reference parser refuses it: {type(error).__name__}: {str(error)[:300]}"
    return None


def _caffe2_seed() -> dict[str, bytes]:
    """A CNN (Conv, Relu, MaxPool, Flatten, Gemm, Softmax) written as a NetDef pair by unframe."""
    import numpy as np
    import onnx
    from click.testing import CliRunner
    from onnx import TensorProto, helper, numpy_helper

    from unframe.cli.main import cli

    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
        helper.make_node("Softmax", ["y"], ["prob"]),
    ]
    weights = {
        "w": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(2).astype(np.float32),
        "fw": rng.standard_normal((3, 8)).astype(np.float32),
        "fb": rng.standard_normal(3).astype(np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = Path(_scratch_dir())
    try:
        onnx.save(model, folder / "cnn.onnx")
        result = CliRunner().invoke(
            cli, ["convert", str(folder / "cnn.onnx"), "-o", str(folder / "cnn.caffe2")]
        )
        assert result.exit_code == 0, result.stderr
        return {p.name: p.read_bytes() for p in sorted((folder / "cnn.caffe2").iterdir())}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_CAFFE2_COMMANDS = (
    ("convert", "{src}", "-o", "{out}.onnx"),
    ("inspect", "{src}"),
    ("convert", "{src}", "-o", "{out}.pt2"),
    ("convert", "{src}", "-o", "{out}.onnx"),
)


def netdef_importer() -> Importer:
    """A predict/init NetDef pair with value_info.json; either net is mutated."""
    seed = _caffe2_seed()
    files = {f"model/{name}": data for name, data in seed.items()}
    mutable = {"model/predict_net.pb": PROTOBUF, "model/init_net.pb": PROTOBUF}
    return Importer("netdef", files, "model", mutable, _CAFFE2_COMMANDS, _netdef_oracle)


def pbtxt_importer() -> Importer:
    """The same predict net as text, without weights (as the model zoo publishes them)."""
    from google.protobuf import text_format

    from unframe.backends.caffe2.native import caffe2_pb2

    seed = _caffe2_seed()
    net = caffe2_pb2.NetDef()
    net.ParseFromString(seed["predict_net.pb"])
    files = {
        "model/predict_net.pbtxt": text_format.MessageToString(net).encode(),
        "model/value_info.json": seed["value_info.json"],
    }
    mutable = {"model/predict_net.pbtxt": TEXT}
    commands = (("inspect", "{src}"), ("convert", "{src}", "-o", "{out}.onnx"))
    return Importer("pbtxt", files, "model", mutable, commands, _netdef_oracle)


def pt2_importer() -> Importer:
    """A ``torch.export.save`` archive of Linear+ReLU; exit 0 is right only where torch's own
    loader still loads and runs it (and onnxruntime on our ONNX gives what torch's program gives)."""
    import torch

    example = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.linear(x))

    torch.manual_seed(0)
    module = Tiny().eval()
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(module, (example,)), buffer)
    with torch.no_grad():
        expected = module(example).numpy()

    def oracle(files: CaseFiles) -> str | None:
        import numpy as np
        import onnxruntime as ort

        try:
            with torch.no_grad():
                program = torch.export.load(files.source)  # our own archive, mutated
                loaded = program.module()(example).numpy()
        except Exception as error:  # noqa: BLE001 - any refusal is the oracle's answer
            return f"torch cannot load it: {type(error).__name__}: {str(error)[:300]}"
        if files.output is None or files.output.suffix != ".onnx":
            return None
        # A zip record torch reads past may leave other weights: the model is then what torch
        # loads, not the module it came from.
        session = ort.InferenceSession(str(files.output), providers=["CPUExecutionProvider"])
        (written,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
        try:
            np.testing.assert_allclose(written, loaded, rtol=1e-5, atol=1e-6)
        except AssertionError as error:
            same = np.allclose(loaded, expected, rtol=1e-6)
            return f"the ONNX differs from what torch loads ({same=} with the module): {error}"
        return None

    commands = (
        ("convert", "{src}", "-o", "{out}.onnx"),
        ("inspect", "{src}"),
        ("convert", "{src}", "-o", "{out}.caffe2"),
    )
    return Importer(
        "pt2", {"tiny.pt2": buffer.getvalue()}, "tiny.pt2", {"tiny.pt2": ZIP}, commands, oracle
    )


IMPORTERS: dict[str, Callable[[], Importer]] = {
    "onnx": onnx_importer,
    "onnx-external": lambda: onnx_importer(external=True),
    "netdef": netdef_importer,
    "pbtxt": pbtxt_importer,
    "pt2": pt2_importer,
}
