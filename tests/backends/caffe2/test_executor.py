"""The executor as a whole: error reporting, run_net, and the real third-party nets.

The fixture nets are checked against an oracle written here on torch.nn.functional, which reads the
weights straight from the init net's GivenTensorFill arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor import CAFFE2_OPS, Workspace, caffe2_op, run_net
from unframe.backends.caffe2.native.netdef import data_inputs, read_model
from unframe.backends.caffe2.native.weights import random_init_net
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "caffe2"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"third-party Caffe2 fixtures not found at {FIXTURES}"
)
MakeOp = Callable[..., caffe2_pb2.OperatorDef]


def _net(*ops: caffe2_pb2.OperatorDef, inputs: list[str], outputs: list[str]) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="t", external_input=inputs, external_output=outputs)
    net.op.extend(ops)
    return net


def test_unknown_ops_are_all_listed_before_running() -> None:
    ops = [
        caffe2_pb2.OperatorDef(type="Relu", input=["x"], output=["a"]),
        caffe2_pb2.OperatorDef(type="FancyOp", input=["a"], output=["b"]),
        caffe2_pb2.OperatorDef(type="Whatever", input=["b"], output=["c"], name="w"),
        caffe2_pb2.OperatorDef(type="FancyOp", input=["c"], output=["d"]),
    ]
    net = _net(*ops, inputs=["x"], outputs=["d"])
    with pytest.raises(UnsupportedOpsError) as info:
        run_net(net, None, {"x": np.ones(2, np.float32)})
    error = info.value
    assert [(op.node, op.op_type) for op in error.ops] == [
        ("op 1", "FancyOp"),
        ("op 2 'w'", "Whatever"),
        ("op 3", "FancyOp"),
    ]
    assert "FancyOp x2" in str(error) and "Whatever x1" in str(error)
    assert len(error.details()) == 3


def test_blob_read_before_written_names_op_type_and_blob() -> None:
    ops = [
        caffe2_pb2.OperatorDef(type="Relu", input=["x"], output=["a"]),
        caffe2_pb2.OperatorDef(type="Add", input=["a", "bias"], output=["y"]),
    ]
    with pytest.raises(BadInputError, match=r"op 1 \(Add\) reads blob 'bias'"):
        run_net(_net(*ops, inputs=["x", "bias"], outputs=["y"]), None, {"x": np.ones(2)})


def test_run_net_checks_inputs_and_outputs() -> None:
    op = caffe2_pb2.OperatorDef(type="Relu", input=["x"], output=["y"])
    with pytest.raises(BadInputError, match="no op writes it"):
        run_net(_net(op, inputs=["x"], outputs=["z"]), None, {"x": np.ones(2)})
    with pytest.raises(BadInputError, match="'q' is not an input"):
        run_net(_net(op, inputs=["x"], outputs=["y"]), None, {"x": np.ones(2), "q": np.ones(1)})


def test_op_errors_name_the_op(make_op: MakeOp) -> None:
    op = make_op("FC", 3)
    op.name = "fc7"
    workspace = Workspace()
    for name, shape in zip(op.input, [(2, 3), (4, 5), (4,)], strict=True):
        workspace.feed(name, np.ones(shape, np.float32))
    with pytest.raises(BadInputError) as info:
        workspace.run_op(op, 7)
    assert "op 7 'fc7'" in str(info.value) and "(FC)" in str(info.value)


def test_init_net_then_predict_net_with_in_place_ops() -> None:
    init = caffe2_pb2.NetDef()
    fill = init.op.add(type="GivenTensorFill", output=["w"])
    fill.arg.add(name="shape", ints=[2])
    fill.arg.add(name="values", floats=[2.0, -3.0])
    ops = [
        caffe2_pb2.OperatorDef(type="Mul", input=["x", "w"], output=["x"]),  # in place
        caffe2_pb2.OperatorDef(type="Relu", input=["x"], output=["x"]),
        caffe2_pb2.OperatorDef(type="Sum", input=["x", "x"], output=["y"]),
    ]
    ops[0].arg.add(name="broadcast", i=1)
    out = run_net(
        _net(*ops, inputs=["x", "w"], outputs=["y", "x"]), init, {"x": np.ones((3, 2), np.float32)}
    )
    assert list(out) == ["y", "x"]
    assert out["y"].tolist() == [[4, 0]] * 3


def test_registry_rejects_duplicates_and_is_open() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        caffe2_op("Relu")(lambda ctx: [])
    assert {"Conv", "GivenTensorFill", "SpatialBN", "Softmax", "Concat"} <= set(
        CAFFE2_OPS.op_types("caffe2")
    )


# -- the fixtures, against a torch oracle -------------------------------------------------------
def _args(op: caffe2_pb2.OperatorDef) -> dict[str, object]:
    out: dict[str, object] = {}
    for arg in op.arg:
        out[arg.name] = (
            list(arg.ints)
            or list(arg.floats)
            or (arg.s.decode() if arg.HasField("s") else arg.f if arg.HasField("f") else arg.i)
        )
    return out


def _torch_reference(
    predict: caffe2_pb2.NetDef, init: caffe2_pb2.NetDef, feeds: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The nets' ops written directly on torch.nn.functional (NCHW, the fixtures' only order)."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    blobs = {}
    for op in init.op:
        if op.output[0] in feeds:  # mtcnn's init net holds a placeholder for its input
            continue
        assert op.type == "GivenTensorFill"
        args = _args(op)
        values = np.asarray(args["values"], dtype=np.float32).reshape(args["shape"])
        blobs[op.output[0]] = torch.from_numpy(values)
    for name, value in feeds.items():
        blobs[name] = torch.from_numpy(value)

    def pair(args: dict, plural: str, single: str, default: int) -> list[int]:
        if plural in args:
            return list(args[plural])
        return [int(args.get(single, default))] * 2

    for op in predict.op:
        a = _args(op)
        x = [blobs[name] for name in op.input]
        if op.type == "Conv":
            pads = list(a["pads"])[:2] if "pads" in a else [int(a.get("pad", 0))] * 2
            y = functional.conv2d(
                x[0], x[1], x[2] if len(x) > 2 else None, stride=pair(a, "strides", "stride", 1),
                padding=pads, groups=int(a.get("group", 1)),
            )  # fmt: skip
        elif op.type in ("MaxPool", "AveragePool"):
            kernel = pair(a, "kernels", "kernel", 1)
            pads = list(a["pads"])[:2] if "pads" in a else [int(a.get("pad", 0))] * 2
            if "pad_t" in a:  # asymmetric: pad explicitly (max pooling never picks -inf)
                assert op.type == "MaxPool"
                sides = (a["pad_l"], a["pad_r"], a["pad_t"], a["pad_b"])
                x[0] = functional.pad(x[0], sides, value=float("-inf"))
                pads = [0, 0]
            ceil = a.get("legacy_pad") == 3
            stride = pair(a, "strides", "stride", 1)
            if op.type == "MaxPool":
                y = functional.max_pool2d(x[0], kernel, stride, pads, ceil_mode=ceil)
            else:
                y = functional.avg_pool2d(
                    x[0], kernel, stride, pads, ceil_mode=ceil, count_include_pad=False
                )
        elif op.type == "Add":
            y = x[0] + x[1].reshape(1, -1, 1, 1)  # the bias add of Caffe2's ONNX export
        elif op.type == "Relu":
            y = functional.relu(x[0])
        elif op.type == "PRelu":
            y = functional.prelu(x[0], x[1])
        elif op.type == "Reshape":
            y = x[0].reshape(list(a["shape"]))
        elif op.type == "FC":
            y = functional.linear(x[0].flatten(1), x[1], x[2])
        elif op.type == "Softmax":
            y = functional.softmax(x[0].flatten(1), dim=1).reshape(x[0].shape)
        elif op.type == "SpatialBN":
            y = functional.batch_norm(x[0], x[3], x[4], x[1], x[2], eps=float(a["epsilon"]))
        elif op.type == "Sum":
            y = x[0] + x[1]
        elif op.type == "LRN":
            y = functional.local_response_norm(
                x[0], int(a["size"]), float(a["alpha"]), float(a["beta"]), float(a["bias"])
            )
        elif op.type == "Dropout":
            y = x[0]
        else:
            raise AssertionError(f"the oracle lacks {op.type}")
        blobs[op.output[0]] = y
    return {name: blobs[name].numpy() for name in predict.external_output}


@needs_fixtures
def test_lenet_runs_and_matches_the_oracle() -> None:
    model = read_model(FIXTURES / "lenet")
    assert model.init_net is not None
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    out = run_net(model.predict_net, model.init_net, {"1": x})
    assert list(out) == ["26"] and out["26"].shape == (2, 10) and out["26"].dtype == np.float32
    expected = _torch_reference(model.predict_net, model.init_net, {"1": x})
    np.testing.assert_allclose(out["26"], expected["26"], rtol=1e-4, atol=1e-4)


@needs_fixtures
@pytest.mark.parametrize("size", [12, 25])
def test_mtcnn_pnet_runs_and_matches_the_oracle(size: int) -> None:
    model = read_model(FIXTURES / "mtcnn_pnet")
    assert model.init_net is not None
    x = np.random.default_rng(size).standard_normal((1, 3, size, size)).astype(np.float32)
    out = run_net(model.predict_net, model.init_net, {"data": x})
    # 12 -> conv 10 -> ceil-mode pool 5 -> conv 3 -> conv 1; 25 -> 23 -> 12 -> 10 -> 8.
    side = 1 if size == 12 else 8
    assert out["prob1"].shape == (1, 2, side, side)
    expected = _torch_reference(model.predict_net, model.init_net, {"data": x})
    np.testing.assert_allclose(out["prob1"], expected["prob1"], rtol=1e-4, atol=1e-6)


@needs_fixtures
@pytest.mark.parametrize("name", ["bvlc_alexnet", "zfnet512", "resnet50", "vgg19"])
def test_zoo_nets_run_with_random_weights(name: str) -> None:
    model = read_model(FIXTURES / "zoo" / name, allow_missing_init=True)
    init = random_init_net(model.predict_net, model.value_info, seed=0, width=8)
    # Every blob that an op reads before any op writes it, except the data input, got a value.
    written: set[str] = set()
    needed: set[str] = set()
    for op in model.predict_net.op:
        needed |= {blob for blob in op.input if blob not in written}
        written |= set(op.output)
    filled = [op.output[0] for op in init.op]
    assert len(filled) == len(set(filled))
    assert set(filled) == needed - set(model.value_info)
    ((input_name, (_, dims)),) = model.value_info.items()
    assert data_inputs(dataclasses.replace(model, init_net=init)) == [input_name]
    x = np.random.default_rng(1).standard_normal(dims).astype(np.float32)
    out = run_net(model.predict_net, init, {input_name: x})
    (result,) = out.values()
    assert result.shape == (1, 1000)  # the last layer gets the 1000 ImageNet classes
    assert result.sum() == pytest.approx(1.0, abs=1e-4)
    expected = _torch_reference(model.predict_net, init, {input_name: x})
    np.testing.assert_allclose(result, next(iter(expected.values())), rtol=1e-3, atol=1e-6)


def test_random_init_net_shapes_by_hand() -> None:
    predict = caffe2_pb2.NetDef(external_input=["data", "w1", "b1", "s", "w2", "b2"])
    conv = predict.op.add(type="Conv", input=["data", "w1", "b1"], output=["c"])
    conv.arg.add(name="kernel", i=3)
    conv.arg.add(name="group", i=2)
    predict.op.add(type="PRelu", input=["c", "s"], output=["c"])
    predict.op.add(type="FC", input=["c", "w2", "b2"], output=["y"])
    init = random_init_net(predict, {"data": (1, [2, 4, 5, 5])}, out_channels={"w1": 6}, classes=7)
    shapes = {op.output[0]: list(_args(op)["shape"]) for op in init.op}  # type: ignore[call-overload]
    assert shapes == {
        "w1": [6, 2, 3, 3],
        "b1": [6],
        "s": [6],
        "w2": [7, 6 * 3 * 3],
        "b2": [7],
    }
