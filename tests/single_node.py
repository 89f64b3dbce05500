"""One-node ONNX models run through the PyTorch backend, for hand-computed op tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper


def single_node_model(
    op: str,
    inputs: list[np.ndarray | None],
    opset: int,
    constants: dict[int, np.ndarray],
    outputs: int,
    dims: dict[int, list[Any]] | None = None,
    **attributes: Any,
) -> onnx.ModelProto:
    """``op`` on ``inputs`` (None: an omitted optional input); ``constants`` become initializers."""
    names = ["" if value is None else f"x{i}" for i, value in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{i}" for i in range(outputs)], **attributes)
    dims = dims or {}
    graph = helper.make_graph(
        [node],
        "single",
        [
            helper.make_tensor_value_info(
                names[i], helper.np_dtype_to_tensor_dtype(v.dtype), dims.get(i, v.shape)
            )
            for i, v in enumerate(inputs)
            if v is not None and i not in constants
        ],
        [
            helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.UNDEFINED, None)
            for i in range(outputs)
        ],
        initializer=[numpy_helper.from_array(v, names[i]) for i, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_single_node(
    op: str,
    inputs: list[np.ndarray | None],
    opset: int = 18,
    constants: tuple[int, ...] = (),
    outputs: int = 1,
    **attributes: Any,
) -> list[np.ndarray]:
    """Runs one ``op`` node in the PyTorch backend; inputs listed in ``constants`` are fixed."""
    import torch

    from unframe.backends.pytorch import to_torch
    from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy

    fixed = {i: v for i, v in enumerate(inputs) if i in constants and v is not None}
    model = single_node_model(op, inputs, opset, fixed, outputs, **attributes)
    module = to_torch(ir.from_proto(model))
    feeds = [v for i, v in enumerate(inputs) if v is not None and i not in fixed]
    with torch.no_grad():
        result = module(*tensors_from_numpy(feeds))
    return list(outputs_to_numpy(result).values())
