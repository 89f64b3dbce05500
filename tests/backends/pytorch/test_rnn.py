"""LSTM/GRU/RNN: the fused torch-kernel path against torch.nn.LSTM/GRU/RNN (and onnxruntime),
in eager mode and through ``torch.export``; the step-by-step loop against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.pytorch import export_program, to_torch  # noqa: E402
from unframe.backends.pytorch.ops import rnn as rnn_ops  # noqa: E402
from unframe.converters.adapters.pytorch import PyTorchFramework  # noqa: E402

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402

OPS = ["LSTM", "GRU", "RNN"]


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


CASES = [
    ("LSTM", 4, {}),
    ("LSTM", 4, {"clip": 0.5}),
    ("GRU", 3, {}),
    ("GRU", 3, {"linear_before_reset": 1}),
    ("RNN", 1, {"activations": ["Relu", "Tanh"]}),
]


@pytest.mark.parametrize(("kind", "gates", "attrs"), CASES)
def test_bidirectional_with_sequence_lens_matches_onnxruntime(
    kind: str, gates: int, attrs: dict[str, object]
) -> None:
    rng = np.random.default_rng(0)
    hidden, inputs, batch, steps, dirs = 3, 4, 2, 5, 2
    weights = {
        "W": rng.standard_normal((dirs, gates * hidden, inputs)).astype(np.float32),
        "R": rng.standard_normal((dirs, gates * hidden, hidden)).astype(np.float32),
        "B": rng.standard_normal((dirs, 2 * gates * hidden)).astype(np.float32),
    }
    feeds = {
        "X": rng.standard_normal((steps, batch, inputs)).astype(np.float32),
        "sl": np.array([5, 3], dtype=np.int32),
        "h0": rng.standard_normal((dirs, batch, hidden)).astype(np.float32),
    }
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    node = helper.make_node(
        kind,
        ["X", "W", "R", "B", "sl", "h0"],
        outputs,
        hidden_size=hidden,
        direction="bidirectional",
        **attrs,
    )
    graph = helper.make_graph(
        [node],
        "rnn",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, feeds["X"].shape),
            helper.make_tensor_value_info("sl", TensorProto.INT32, [batch]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, feeds["h0"].shape),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    got = list(PyTorchFramework().run_ir(ir.from_proto(model), feeds).values())
    assert len(got) == len(want)
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# -- nodes torch's own kernels compute: checked against torch.nn.LSTM/GRU/RNN ------------------

HIDDEN, FEATURES = 4, 3
#: For each ONNX gate (LSTM iofc, GRU zrh), the index of the same gate in torch's weights
#: (LSTM ifgo, GRU rzn).
ONNX_GATES_IN_TORCH = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}
#: ONNX op, its attributes beyond the defaults and the torch module computing the same.
KERNEL_CASES = {
    "lstm": ("LSTM", {}, lambda bi: torch.nn.LSTM(FEATURES, HIDDEN, bidirectional=bi)),
    "gru": (
        "GRU",
        {"linear_before_reset": 1},
        lambda bi: torch.nn.GRU(FEATURES, HIDDEN, bidirectional=bi),
    ),
    "rnn_tanh": ("RNN", {}, lambda bi: torch.nn.RNN(FEATURES, HIDDEN, bidirectional=bi)),
    "rnn_relu": (
        "RNN",
        {"activations": ["Relu"]},
        lambda bi: torch.nn.RNN(FEATURES, HIDDEN, nonlinearity="relu", bidirectional=bi),
    ),
}


def _onnx_weights(module: torch.nn.RNNBase, op: str) -> dict[str, np.ndarray]:
    """W, R, B of an ONNX node computing what ``module`` (one layer) computes."""

    def onnx_order(weight: torch.Tensor) -> np.ndarray:
        gates = weight.detach().numpy().reshape(len(ONNX_GATES_IN_TORCH[op]), HIDDEN, -1)
        return gates[ONNX_GATES_IN_TORCH[op]].reshape(weight.shape)

    suffixes = ["", "_reverse"] if module.bidirectional else [""]
    per_direction = {
        name: [onnx_order(getattr(module, f"{name}_l0{s}")) for s in suffixes]
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    return {
        "W": np.stack(per_direction["weight_ih"]),
        "R": np.stack(per_direction["weight_hh"]),
        "B": np.concatenate(
            [np.stack(per_direction["bias_ih"]), np.stack(per_direction["bias_hh"])], axis=1
        ),
    }


def _kernel_model(
    kind: str, module: torch.nn.RNNBase, direction: str, layout: int, with_state: bool
) -> onnx.ModelProto:
    op, extra_attrs, _ = KERNEL_CASES[kind]
    dirs = 2 if direction == "bidirectional" else 1
    x_dims: list[int | str] = ["seq", "batch", FEATURES]
    state_dims: list[int | str] = [dirs, "batch", HIDDEN]
    if layout == 1:  # batch-major
        x_dims[:2], state_dims[:2] = x_dims[1::-1], state_dims[1::-1]
    states = ["h0", "c0"] if op == "LSTM" else ["h0"]
    inputs = ["X", "W", "R", "B", ""] + (states if with_state else [])
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": HIDDEN, "direction": direction, "layout": layout, **extra_attrs}
    if "activations" in attrs:  # one list per direction
        attrs["activations"] = extra_attrs["activations"] * dirs
    node = helper.make_node(op, inputs, outputs, **attrs)
    graph = helper.make_graph(
        [node],
        "rnn",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_dims)]
        + [
            helper.make_tensor_value_info(s, TensorProto.FLOAT, state_dims)
            for s in (states if with_state else [])
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(a, n) for n, a in _onnx_weights(module, op).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _torch_outputs(
    module: torch.nn.RNNBase,
    direction: str,
    layout: int,
    x: torch.Tensor,
    states: list[torch.Tensor],
) -> list[np.ndarray]:
    """ONNX's Y, Y_h(, Y_c) from the torch module, in ``layout``; seq-major ``x``, states."""
    reverse = direction == "reverse"  # torch has no backward-only layer: reverse the input
    with torch.no_grad():
        if isinstance(module, torch.nn.LSTM):
            out, (h, c) = module(x.flip(0) if reverse else x, tuple(states) if states else None)
            finals = [h, c]
        else:
            out, h = module(x.flip(0) if reverse else x, states[0] if states else None)
            finals = [h]
    y = out.unflatten(2, (-1, HIDDEN)).transpose(1, 2)  # [seq, dirs, batch, hidden]
    y = y.flip(0) if reverse else y
    if layout == 1:
        y, finals = y.permute(2, 0, 1, 3), [s.transpose(0, 1) for s in finals]
    return [t.numpy() for t in (y, *finals)]


def _onnx_feeds(
    layout: int, x: torch.Tensor, states: list[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """Graph inputs in ONNX's ``layout`` from seq-major ``x`` and [dirs, batch, hidden] states."""
    if layout == 1:
        return (x.transpose(0, 1), *(s.transpose(0, 1) for s in states))
    return (x, *states)


def _random_inputs(
    kind: str, dirs: int, steps: int, batch: int, with_state: bool, seed: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, FEATURES, generator=generator)
    count = (2 if kind == "lstm" else 1) if with_state else 0
    return x, [torch.randn(dirs, batch, HIDDEN, generator=generator) for _ in range(count)]


def _graph_targets(module: torch.fx.GraphModule) -> set[object]:
    return {node.target for node in module.graph.nodes}


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("kind", sorted(KERNEL_CASES))
def test_fused_kernel_matches_torch_module(
    kind: str, direction: str, layout: int, with_state: bool
) -> None:
    torch.manual_seed(0)
    module = KERNEL_CASES[kind][2](direction == "bidirectional")
    model = _kernel_model(kind, module, direction, layout, with_state)
    built = to_torch(ir.from_proto(model))
    assert rnn_ops.fused_rnn in _graph_targets(built)
    assert rnn_ops._run not in _graph_targets(built)  # noqa: SLF001 - the loop is not used
    x, states = _random_inputs(kind, module.bidirectional + 1, 5, 2, with_state, seed=1)
    feeds = _onnx_feeds(layout, x, states)
    with torch.no_grad():
        got = [t.numpy() for t in built(*feeds)]
    want = _torch_outputs(module, direction, layout, x, states)
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    if layout == 1:
        return  # onnxruntime has no batch-major recurrences, onnx's reference no Relu in RNN
    # ONNX's semantics agree too (GRU: torch's reset gate is linear_before_reset=1).
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    reference = session.run(None, {n: t.numpy() for n, t in zip(names, feeds, strict=True)})
    for actual, expected in zip(got, reference, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "direction", "layout", "with_state"),
    [
        ("lstm", "bidirectional", 1, True),
        ("lstm", "reverse", 0, False),  # h0 and c0 one zero tensor: the scan must copy them
        ("gru", "reverse", 0, False),
        ("rnn_relu", "bidirectional", 0, False),
    ],
)
def test_exported_program_keeps_the_sequence_axis(
    kind: str, direction: str, layout: int, with_state: bool
) -> None:
    """``torch.export`` of the fused path runs other lengths than its example (a scan)."""
    torch.manual_seed(0)
    module = KERNEL_CASES[kind][2](direction == "bidirectional")
    model = ir.from_proto(_kernel_model(kind, module, direction, layout, with_state))
    program = export_program(model)
    assert {"W", "R", "B"} <= {name.rsplit(".", 1)[-1] for name in program.state_dict}
    for steps, batch in [(3, 3), (11, 2)]:
        x, states = _random_inputs(kind, module.bidirectional + 1, steps, batch, with_state, 2)
        with torch.no_grad():
            got = [t.numpy() for t in program.module()(*_onnx_feeds(layout, x, states))]
        want = _torch_outputs(module, direction, layout, x, states)
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# -- what torch's kernels cannot compute stays on the step-by-step loop ------------------------

LOOP_CASES = [
    ("GRU", {}, False),  # linear_before_reset=0
    ("LSTM", {}, True),  # peepholes
    ("LSTM", {"clip": 0.5}, True),  # clip bounds the gates with their peephole terms
    ("LSTM", {"input_forget": 1}, False),
    ("LSTM", {"clip": 0.5}, False),
    ("RNN", {"activations": ["Relu", "Tanh"]}, False),  # one function per direction
    ("GRU", {"linear_before_reset": 1, "activations": ["HardSigmoid", "Tanh"] * 2}, False),
]
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
LOOP_HIDDEN, LOOP_FEATURES, LOOP_BATCH = 3, 4, 2


def _loop_model(
    kind: str, attrs: dict[str, object], peepholes: bool, with_lengths: bool
) -> onnx.ModelProto:
    """A bidirectional node, seq-major X of symbolic length (and an input ``lengths``)."""
    rng = np.random.default_rng(3)
    hidden, dirs, rows = LOOP_HIDDEN, 2, GATES[kind] * LOOP_HIDDEN
    weights = {
        "W": rng.standard_normal((dirs, rows, LOOP_FEATURES)).astype(np.float32),
        "R": rng.standard_normal((dirs, rows, hidden)).astype(np.float32),
        "B": rng.standard_normal((dirs, 2 * rows)).astype(np.float32),
    }
    if peepholes:
        weights["P"] = rng.standard_normal((dirs, 3 * hidden)).astype(np.float32)
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    inputs = ["X", "W", "R", "B", "lengths" if with_lengths else ""]
    inputs += ["", "", "P"] if peepholes else []
    node = helper.make_node(
        kind, inputs, outputs, hidden_size=hidden, direction="bidirectional", **attrs
    )
    graph_inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", LOOP_BATCH, LOOP_FEATURES])
    ]
    if with_lengths:
        graph_inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, [2]))
    graph = helper.make_graph(
        [node],
        "rnn",
        graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _loop_feeds(steps: int, with_lengths: bool, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"X": rng.standard_normal((steps, LOOP_BATCH, LOOP_FEATURES)).astype(np.float32)}
    if with_lengths:
        feeds["lengths"] = np.array([steps, max(steps - 2, 1)], dtype=np.int32)
    return feeds


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "sequence_lens"])
@pytest.mark.parametrize(("kind", "attrs", "peepholes"), LOOP_CASES)
def test_loop_handles_what_the_kernels_cannot(
    kind: str, attrs: dict[str, object], peepholes: bool, with_lengths: bool
) -> None:
    model = _loop_model(kind, attrs, peepholes, with_lengths)
    built = to_torch(ir.from_proto(model))
    assert rnn_ops._run in _graph_targets(built)  # noqa: SLF001
    assert rnn_ops.fused_rnn not in _graph_targets(built)
    feeds = _loop_feeds(5, with_lengths, seed=4)
    with torch.no_grad():
        got = [t.numpy() for t in built(*(torch.from_numpy(a) for a in feeds.values()))]
    for actual, expected in zip(got, _onnxruntime(model, feeds), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "attrs", "peepholes", "with_lengths"),
    [("GRU", {}, False, True), ("LSTM", {"clip": 0.5}, True, True), ("RNN", {}, False, False)],
)
def test_exported_loop_keeps_the_sequence_axis(
    kind: str, attrs: dict[str, object], peepholes: bool, with_lengths: bool
) -> None:
    """``torch.export`` of the step-by-step path runs other lengths than its example (a scan)."""
    attrs = {"activations": ["Relu", "Tanh"]} if kind == "RNN" else attrs
    model = _loop_model(kind, attrs, peepholes, with_lengths)
    program = export_program(ir.from_proto(model))
    for steps in (3, 9):
        feeds = _loop_feeds(steps, with_lengths, seed=steps)
        with torch.no_grad():
            got = program.module()(*(torch.from_numpy(a) for a in feeds.values()))
        for actual, expected in zip(got, _onnxruntime(model, feeds), strict=True):
            np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-5)
