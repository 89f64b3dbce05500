"""toyfw: a toy framework that plugs into unframe through the ``unframe.frameworks`` entry point.

Small but whole: a native format of its own, a backend (IR -> toy), a frontend (toy -> IR), an op
registry that lets unframe list every node it cannot write before writing anything, and a runtime.

The format is one JSON file (``.toy``): the inputs and outputs with element type and shape, the
parameters as base64 little-endian bytes, and the layers in toyfw's own vocabulary (``matmul``,
``add``, ``relu``...). The runtime is a few lines of numpy. A package declares it with::

    [project.entry-points."unframe.frameworks"]
    toyfw = "toyfw:ToyFramework"

The plugin test (tests/converters/test_plugins.py) installs it that way and converts through the
``unframe`` command; docs/adding-a-framework.md walks through it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import Framework
from unframe.shared_ir.errors import BadInputError, ConversionError
from unframe.shared_ir.inputs import align_feeds
from unframe.shared_ir.op_registry import OpRegistry

if TYPE_CHECKING:
    from unframe.converters.framework import ConvertOptions

FORMAT = "toyfw/1"
#: The ONNX opset whose meaning toyfw's layers have; a loaded model imports it.
OPSET = 18

Layer = dict[str, Any]
Converter = Callable[[ir.Node], Layer]

#: IR -> toyfw, one converter per ONNX op at the op's ``since_version``.
ops: OpRegistry[Converter] = OpRegistry("toyfw", "export")


def _layer(kind: str, node: ir.Node) -> Layer:
    if any(value is None for value in node.inputs):
        raise ConversionError(f"toyfw's {kind} has no optional inputs")
    return {
        "kind": kind,
        "name": node.name or "",
        "inputs": [value.name for value in node.inputs if value is not None],
        "outputs": [value.name for value in node.outputs],
    }


@ops.register("MatMul", since=13)
def matmul_v13(node: ir.Node) -> Layer:
    return _layer("matmul", node)


@ops.register("Add", since=14)
def add_v14(node: ir.Node) -> Layer:
    return _layer("add", node)


@ops.register("Mul", since=14)
def mul_v14(node: ir.Node) -> Layer:
    return _layer("mul", node)


@ops.register("Relu", since=14)
def relu_v14(node: ir.Node) -> Layer:
    return _layer("relu", node)


@ops.register("Sigmoid", since=13)
def sigmoid_v13(node: ir.Node) -> Layer:
    return _layer("sigmoid", node)


#: toyfw -> IR: each layer kind as the ONNX op it means at ``OPSET``.
ONNX_OP = {"matmul": "MatMul", "add": "Add", "mul": "Mul", "relu": "Relu", "sigmoid": "Sigmoid"}

#: toyfw's runtime: one numpy function per layer kind.
KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "matmul": np.matmul,
    "add": np.add,
    "mul": np.multiply,
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype),
}


def _encode(array: np.ndarray) -> dict[str, Any]:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": base64.b64encode(little.tobytes()).decode("ascii"),
    }


def _decode(entry: Mapping[str, Any]) -> np.ndarray:
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    flat = np.frombuffer(base64.b64decode(entry["data"]), dtype=dtype)
    return flat.reshape(entry["shape"]).astype(dtype.newbyteorder("="))


def _describe(value: ir.Value) -> dict[str, Any]:
    if value.dtype is None:
        raise ConversionError(f"toyfw needs the element type of {value.name!r}")
    dims = (
        None if value.shape is None else [d if isinstance(d, int) else str(d) for d in value.shape]
    )
    return {"name": value.name, "dtype": value.dtype.numpy().name, "shape": dims}


def _value(entry: Mapping[str, Any]) -> ir.Value:
    shape = None if entry["shape"] is None else ir.Shape(entry["shape"])
    dtype = ir.DataType.from_numpy(np.dtype(entry["dtype"]))
    return ir.Value(name=entry["name"], type=ir.TensorType(dtype), shape=shape)


def read_toy(path: Path) -> dict[str, Any]:
    """The JSON document of a ``.toy`` file; BadInputError when it is not one."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"not a toyfw model ({error})", path=str(path)) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadInputError(f"not a toyfw model (no format {FORMAT!r})", path=str(path))
    return document


class ToyFramework(Framework):
    """toyfw: reads and writes ``.toy`` JSON files and runs them with numpy."""

    name = "toyfw"
    reads = (".toy",)
    writes = (".toy",)

    def export_registry(self) -> OpRegistry[Converter]:
        return ops

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        graph = model.graph
        opset = model.opset_imports.get("", OPSET)
        layers = []
        for node in graph:
            convert = ops.lookup(node.op_type, opset, node.domain)
            if convert is None:  # unframe scanned for these already; a direct caller may not
                raise ConversionError("no toyfw converter", node=node.name, op_type=node.op_type)
            layers.append(convert(node))
        params = {}
        for name, value in graph.initializers.items():
            if value.const_value is None:
                raise ConversionError(f"initializer {name!r} has no data")
            params[name] = _encode(value.const_value.numpy())
        document = {
            "format": FORMAT,
            "inputs": [_describe(v) for v in graph.inputs if v.name not in graph.initializers],
            "outputs": [_describe(v) for v in graph.outputs],
            "params": params,
            "layers": layers,
        }
        path.write_text(json.dumps(document, indent=1))

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        document = read_toy(path)
        values: dict[str, ir.Value] = {}
        inputs = [_value(entry) for entry in document["inputs"]]
        values.update((v.name or "", v) for v in inputs)
        initializers = []
        for name, entry in document["params"].items():
            array = _decode(entry)
            value = ir.Value(
                name=name,
                type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                shape=ir.Shape(array.shape),
                const_value=ir.Tensor(array, name=name),
            )
            values[name] = value
            initializers.append(value)
        outputs = {entry["name"]: _value(entry) for entry in document["outputs"]}
        nodes = []
        for layer in document["layers"]:
            if layer["kind"] not in ONNX_OP:
                raise BadInputError(f"unknown toyfw layer kind {layer['kind']!r}", path=str(path))
            missing = [name for name in layer["inputs"] if name not in values]
            if missing:
                raise BadInputError(f"layer {layer['name']!r} reads undefined {missing}")
            results = [outputs.get(name) or ir.Value(name=name) for name in layer["outputs"]]
            nodes.append(
                ir.Node(
                    "",
                    ONNX_OP[layer["kind"]],
                    [values[name] for name in layer["inputs"]],
                    outputs=results,
                    name=layer["name"],
                )
            )
            values.update((v.name or "", v) for v in results)
        graph = ir.Graph(
            inputs,
            list(outputs.values()),
            nodes=nodes,
            initializers=initializers,
            opset_imports={"": OPSET},
            name="toyfw",
        )
        return ir.Model(graph, ir_version=10, producer_name="toyfw")

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        document = read_toy(path)
        names = [entry["name"] for entry in document["inputs"]]
        env = {name: _decode(entry) for name, entry in document["params"].items()}
        env.update(align_feeds(names, inputs))
        for layer in document["layers"]:
            (name,) = layer["outputs"]
            env[name] = KERNELS[layer["kind"]](*(env[i] for i in layer["inputs"]))
        return {entry["name"]: env[entry["name"]] for entry in document["outputs"]}
