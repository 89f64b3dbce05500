"""Hand-built ONNX models written as ``.pt2`` and read back agree with onnxruntime on the source.

Regressions of what the read-back test (tests/converters/test_readback.py) found on real models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

pytest.importorskip("torch")

import unframe  # noqa: E402


def _run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]
    return [np.asarray(a) for a in session.run(None, {n: feeds[n] for n in names})]


def _through_pt2(model: onnx.ModelProto, tmp_path: Path) -> tuple[Path, Path]:
    source, written, back = tmp_path / "m.onnx", tmp_path / "m.pt2", tmp_path / "back.onnx"
    onnx.save(model, source)
    unframe.convert(source, written, target="pytorch")
    unframe.convert(written, back, source="pytorch")
    onnx.checker.check_model(onnx.load(back), full_check=True)
    return source, back


def test_opset9_global_pool_softmax_over_large_equal_logits(tmp_path: Path) -> None:
    """light_squeezenet's head: every channel holds the same map at ~1e10, so every class is 1/1000.

    A mean written back as ReduceMean rounded some channels one ulp apart in onnxruntime, and the
    Softmax over 1e10-sized logits gave 1/750 and 0 instead.
    """
    shape = [1, 1000, 13, 13]
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
            helper.make_node("Softmax", ["pooled"], ["y"], axis=1),
        ],
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    spatial = np.linspace(2e9, 1.4e10, 169, dtype=np.float32).reshape(1, 1, 13, 13)
    feeds = {"x": np.broadcast_to(spatial, shape).copy()}
    source, back = _through_pt2(model, tmp_path)
    (want,) = _run(source, feeds)
    (got,) = _run(back, feeds)
    np.testing.assert_allclose(want, 1e-3, rtol=1e-5)  # the oracle itself: all classes equal
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_opset9_softmax_coerces_to_2d(tmp_path: Path) -> None:
    """Opset < 13 Softmax over [1, 1000, 1, 1], axis 1: one softmax over all 1000 values."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
        "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1000, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 1000, 1, 1)).astype(np.float32)}
    source, back = _through_pt2(model, tmp_path)
    np.testing.assert_allclose(_run(back, feeds)[0], _run(source, feeds)[0], rtol=1e-5, atol=1e-8)


def test_batch_norm_statistics_read_back(tmp_path: Path) -> None:
    """BatchNormalization's running mean and variance initializers: torch.onnx refused them as
    trainable parameters ('not differentiable with respect to argument running_mean')."""
    rng = np.random.default_rng(1)
    channels = 4
    stats = {
        "scale": rng.uniform(0.5, 1.5, channels),
        "bias": rng.standard_normal(channels),
        "mean": rng.standard_normal(channels),
        "var": rng.uniform(0.5, 2.0, channels),
    }
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", *stats], ["y"], epsilon=1e-5)],
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 5, 5])],
        [onnx.numpy_helper.from_array(a.astype(np.float32), name) for name, a in stats.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    feeds = {"x": rng.standard_normal((1, channels, 5, 5)).astype(np.float32)}
    source, back = _through_pt2(model, tmp_path)
    np.testing.assert_allclose(_run(back, feeds)[0], _run(source, feeds)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("op_type", "attrs"),
    [
        ("GRU", {"linear_before_reset": 1}),  # torch's kernel equations
        ("LSTM", {}),  # torch's kernel equations
        ("GRU", {}),  # linear_before_reset=0: the step-by-step cells
    ],
    ids=["gru_kernel", "lstm_kernel", "gru_loop"],
)
def test_recurrence_of_symbolic_length_reads_back(
    op_type: str, attrs: dict[str, int], tmp_path: Path
) -> None:
    """The torch zoo's GRU and LSTM: torch.onnx could not decompose ``aten.gru``/``aten.lstm``
    inside the scan over a symbolic sequence ('SymInt' object has no attribute 'unsqueeze'), and
    a Scan body returning one value as both its state and its per-step output (torch.onnx drops
    the clone between them) ran wrong in onnxruntime."""
    rng = np.random.default_rng(2)
    hidden, features, gates = 3, 4, {"GRU": 3, "LSTM": 4}[op_type]
    weights = {
        "W": rng.standard_normal((2, gates * hidden, features)),
        "R": rng.standard_normal((2, gates * hidden, hidden)),
        "B": rng.standard_normal((2, 2 * gates * hidden)),
    }
    outputs = ["Y", "Y_h"] + (["Y_c"] if op_type == "LSTM" else [])
    graph = helper.make_graph(
        [
            helper.make_node(
                op_type,
                ["x", *weights],
                outputs,
                hidden_size=hidden,
                direction="bidirectional",
                **attrs,
            )
        ],
        "recurrence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        [onnx.numpy_helper.from_array(a.astype(np.float32), n) for n, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    source, back = _through_pt2(model, tmp_path)
    for steps, batch in [(5, 2), (9, 3)]:  # the sequence axis stays symbolic through the .pt2
        feeds = {"x": rng.standard_normal((steps, batch, features)).astype(np.float32)}
        want = _run(source, feeds)
        got = _run(back, feeds)
        assert [a.shape for a in got] == [a.shape for a in want]
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
