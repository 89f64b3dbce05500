"""The small models the README's framework x framework table is measured on, built in code.

Usage: python scripts/matrix_models.py OUT_DIR   (writes the models, prints their paths)

Every model is tiny and deterministic (fixed seeds): an MLP, a small CNN and a small transformer
block, each from ONNX (written with onnx.helper) and from PyTorch (``torch.export``); from Keras
(TensorFlow), TFLite (TF's own converter) and Core ML (coremltools' converter from the PyTorch
MLP) where those are installed. Caffe2 has no producer that runs here: its sources are the ONNX
models written by unframe's own Caffe2 backend, which the table says.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Where a source was not made by its framework's own tools, what made it (for the table).
MADE_BY_UNFRAME = "written by unframe's own backend from the ONNX model"


def _weights(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 0.3) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict) -> Path:
    initializers = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def onnx_mlp(path: Path) -> Path:
    rng = np.random.default_rng(1)
    node = helper.make_node
    return _save(
        path,
        [
            node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1"),
            node("Relu", ["h1"], ["a1"], name="relu1"),
            node("Gemm", ["a1", "w2", "b2"], ["h2"], name="fc2"),
            node("Tanh", ["h2"], ["a2"], name="tanh2"),
            node("Gemm", ["a2", "w3", "b3"], ["y"], name="fc3"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        {
            "w1": _weights(rng, (8, 16)),
            "b1": _weights(rng, (16,)),
            "w2": _weights(rng, (16, 16)),
            "b2": _weights(rng, (16,)),
            "w3": _weights(rng, (16, 4)),
            "b3": _weights(rng, (4,)),
        },
    )


def onnx_cnn(path: Path) -> Path:
    rng = np.random.default_rng(2)
    node = helper.make_node
    return _save(
        path,
        [
            node("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            node("Relu", ["c1"], ["r1"], name="relu1"),
            node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
            node("Conv", ["p1", "c2.w", "c2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
            node("Relu", ["c2"], ["r2"], name="relu2"),
            node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
            node("Flatten", ["g"], ["f"], name="flatten"),
            node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        {
            "c1.w": _weights(rng, (8, 3, 3, 3)),
            "c1.b": _weights(rng, (8,)),
            "c2.w": _weights(rng, (8, 8, 3, 3)),
            "c2.b": _weights(rng, (8,)),
            "fc.w": _weights(rng, (5, 8)),
            "fc.b": _weights(rng, (5,)),
        },
    )


def onnx_transformer(path: Path) -> Path:
    """One pre-norm block: LayerNorm, single-head attention, residual, LayerNorm, GELU FFN."""
    rng = np.random.default_rng(3)
    node = helper.make_node
    dim, hidden = 8, 16
    weights = {
        "ln1.g": np.ones(dim, np.float32),
        "ln1.b": np.zeros(dim, np.float32),
        "wq": _weights(rng, (dim, dim)),
        "wk": _weights(rng, (dim, dim)),
        "wv": _weights(rng, (dim, dim)),
        "wo": _weights(rng, (dim, dim)),
        "scale": np.array(1.0 / np.sqrt(dim), np.float32),
        "ln2.g": np.ones(dim, np.float32),
        "ln2.b": np.zeros(dim, np.float32),
        "w1": _weights(rng, (dim, hidden)),
        "w2": _weights(rng, (hidden, dim)),
        "sqrt2": np.array(np.sqrt(2.0), np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
    }
    nodes = [
        node("LayerNormalization", ["x", "ln1.g", "ln1.b"], ["n1"], name="ln1", axis=-1),
        node("MatMul", ["n1", "wq"], ["q"], name="q"),
        node("MatMul", ["n1", "wk"], ["k"], name="k"),
        node("MatMul", ["n1", "wv"], ["v"], name="v"),
        node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
        node("MatMul", ["q", "kt"], ["qk"], name="qk"),
        node("Mul", ["qk", "scale"], ["scores"], name="scaled"),
        node("Softmax", ["scores"], ["attn"], name="softmax", axis=-1),
        node("MatMul", ["attn", "v"], ["ctx"], name="context"),
        node("MatMul", ["ctx", "wo"], ["o"], name="out_proj"),
        node("Add", ["x", "o"], ["r1"], name="residual1"),
        node("LayerNormalization", ["r1", "ln2.g", "ln2.b"], ["n2"], name="ln2", axis=-1),
        node("MatMul", ["n2", "w1"], ["h"], name="ffn1"),
        # exact GELU: 0.5 * h * (1 + erf(h / sqrt 2))
        node("Div", ["h", "sqrt2"], ["hs"], name="gelu_div"),
        node("Erf", ["hs"], ["e"], name="gelu_erf"),
        node("Add", ["e", "one"], ["e1"], name="gelu_add"),
        node("Mul", ["h", "e1"], ["he"], name="gelu_mul"),
        node("Mul", ["he", "half"], ["g"], name="gelu_half"),
        node("MatMul", ["g", "w2"], ["f"], name="ffn2"),
        node("Add", ["r1", "f"], ["y"], name="residual2"),
    ]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, dim])],
        weights,
    )


def _torch_modules() -> dict[str, tuple[object, tuple[int, ...]]]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, dim: int = 8) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)
            self.ffn = nn.Sequential(nn.Linear(dim, 16), nn.GELU(), nn.Linear(16, dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = self.ln1(x)
            x = x + self.attention(n, n, n, need_weights=False)[0]
            return x + self.ffn(self.ln2(x))

    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))
    cnn = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    return {
        "mlp": (mlp.eval(), (2, 8)),
        "cnn": (cnn.eval(), (1, 3, 16, 16)),
        "transformer": (Block().eval(), (1, 6, 8)),
    }


def pytorch_models(folder: Path) -> list[Path]:
    import torch

    paths = []
    for name, (module, shape) in _torch_modules().items():
        example = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        path = folder / f"torch_{name}.pt2"
        torch.export.save(torch.export.export(module, (example,)), path)
        paths.append(path)
    return paths


def coreml_models(folder: Path) -> list[Path]:
    """The PyTorch MLP through coremltools' own converter (conversion runs off macOS)."""
    import coremltools as ct
    import torch

    module, shape = _torch_modules()["mlp"]
    traced = torch.jit.trace(module, torch.zeros(*shape))
    package = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=shape)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,
    )
    path = folder / "coreml_mlp.mlpackage"
    package.save(str(path))
    return [path]


def keras_models(folder: Path) -> list[Path]:
    """A Keras MLP and CNN (``.keras``), and the MLP through TF's own TFLite converter."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential(
        [
            keras.Input((8,), batch_size=2),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(4),
        ]
    )
    cnn = keras.Sequential(
        [
            keras.Input((16, 16, 3), batch_size=1),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),
        ]
    )
    paths = []
    for name, model in (("mlp", mlp), ("cnn", cnn)):
        path = folder / f"keras_{name}.keras"
        model.save(path)
        paths.append(path)
    if importlib.util.find_spec("ai_edge_litert") is not None:
        converter = tf.lite.TFLiteConverter.from_keras_model(mlp)
        path = folder / "tflite_mlp.tflite"
        path.write_bytes(converter.convert())
        paths.append(path)
    return paths


def caffe2_models(folder: Path, onnx_sources: list[Path]) -> list[Path]:
    from unframe.converters import api

    paths = []
    for source in onnx_sources[:2]:  # the MLP and the CNN
        path = folder / f"caffe2_{source.stem.removeprefix('onnx_')}.caffe2"
        api.convert(source, path)
        paths.append(path)
    return paths


def build(folder: Path, *, log: Callable[[str], None] = print) -> list[Path]:
    """Writes every model a framework installed here can make into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_sources = [
        onnx_mlp(folder / "onnx_mlp.onnx"),
        onnx_cnn(folder / "onnx_cnn.onnx"),
        onnx_transformer(folder / "onnx_transformer.onnx"),
    ]
    paths = list(onnx_sources)
    makers: list[tuple[str, Callable[[], list[Path]]]] = [
        ("torch", lambda: pytorch_models(folder)),
        ("tensorflow", lambda: keras_models(folder)),
        ("coremltools", lambda: coreml_models(folder)),
        ("unframe.backends.caffe2", lambda: caffe2_models(folder, onnx_sources)),
    ]
    for module, make in makers:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            log(f"skipped: {module} is not installed")
            continue
        # TF's exporters print on stdout, where the table goes.
        with contextlib.redirect_stdout(sys.stderr):
            paths += make()
    return paths


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in build(Path(sys.argv[1]), log=lambda line: print(line, file=sys.stderr)):
        print(path)


if __name__ == "__main__":
    main()
