"""The ``.toy`` format: one JSON file that both directions read and write through this module.

A document holds the graph's ``inputs`` and ``outputs`` (name, dtype, shape), its ``params`` (name
-> base64 little-endian bytes), and its ``layers`` in toyfw's own vocabulary, each with the name
of the node it came from (``name``), the values it reads and writes, and its ``attrs``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.shared_ir.errors import BadInputError

__all__ = [
    "DTYPES",
    "FORMAT",
    "OPSET",
    "Document",
    "Layer",
    "decode",
    "encode",
    "read_toy",
    "run_toy",
    "write_toy",
]

FORMAT = "toyfw/1"
#: The ONNX opset whose meaning toyfw's layers have.
OPSET = 18

Document = dict[str, Any]
Layer = dict[str, Any]

#: The one dtype table: toyfw's element type names and the IR types they are.
DTYPES: dict[str, ir.DataType] = {
    "float32": ir.DataType.FLOAT,
    "float64": ir.DataType.DOUBLE,
    "int64": ir.DataType.INT64,
}

#: toyfw's runtime: one numpy function per layer kind, with the layer's attributes as keywords.
KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "matmul": np.matmul,
    "add": np.add,
    "mul": np.multiply,
    "scale": lambda x, factor: x * np.asarray(factor, x.dtype),
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "leaky_relu": lambda x, alpha: np.where(x < 0, x * np.asarray(alpha, x.dtype), x),
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype),
}


def encode(array: np.ndarray) -> dict[str, Any]:
    """A parameter's entry in ``params``."""
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    data = base64.b64encode(little.tobytes()).decode("ascii")
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": data}


def decode(entry: Mapping[str, Any]) -> np.ndarray:
    """A parameter's array; BadInputError where its bytes do not fill its shape."""
    dtype = DTYPES[entry["dtype"]].numpy().newbyteorder("<")
    try:
        flat = np.frombuffer(base64.b64decode(entry["data"]), dtype=dtype)
        return flat.reshape(entry["shape"]).astype(dtype.newbyteorder("="))
    except (ValueError, TypeError) as error:
        raise BadInputError(f"a toyfw parameter cannot be read ({error})") from None


def read_toy(path: Path) -> Document:
    """The document of a ``.toy`` file, its structure checked; BadInputError when it is not one."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"not a toyfw model ({error})", path=str(path)) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadInputError(f"not a toyfw model (no format {FORMAT!r})", path=str(path))
    problem = _structure_problem(document)
    if problem:
        raise BadInputError(f"malformed toyfw model: {problem}", path=str(path))
    return document


def _structure_problem(document: Document) -> str | None:
    """What is wrong with a document's structure; checked once on reading, so that converters
    never meet a malformed layer (which they would take for a bug of their own)."""
    try:
        for entry in [*document["inputs"], *document["outputs"], *document["params"].values()]:
            if entry["dtype"] not in DTYPES:
                return f"unknown dtype {entry['dtype']!r}"
        for layer in document["layers"]:
            names = [layer["kind"], layer["name"], *layer["inputs"], *layer["outputs"]]
            if not all(isinstance(n, str) for n in names) or len(layer["outputs"]) != 1:
                return f"layer {layer['name']!r} is not one"
            if not isinstance(layer.get("attrs", {}), dict):
                return f"layer {layer['name']!r} has attrs that are not a mapping"
    except (KeyError, TypeError, AttributeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def write_toy(document: Document, path: Path) -> None:
    Path(path).write_text(json.dumps({"format": FORMAT, **document}, indent=1))


def run_toy(document: Document, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a document's layers in order on numpy; ``feeds`` keyed by its input names."""
    env = {name: decode(entry) for name, entry in document["params"].items()}
    env.update(feeds)
    for layer in document["layers"]:
        (output,) = layer["outputs"]
        inputs = [env[name] for name in layer["inputs"]]
        env[output] = KERNELS[layer["kind"]](*inputs, **layer.get("attrs", {}))
    return {entry["name"]: env[entry["name"]] for entry in document["outputs"]}
