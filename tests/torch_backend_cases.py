"""Small ONNX graphs built into torch modules by the PyTorch backend and run, for hand-computed cases.

Import it after ``pytest.importorskip("torch")``: it imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import torch
from onnx import helper, numpy_helper

from unframe.backends.pytorch import export_program, fx_functions, to_torch
from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy


def run_single_node(
    op: str,
    inputs: list[np.ndarray | None],
    opset: int = 18,
    domain: str = "",
    **attributes: Any,
) -> np.ndarray:
    """Runs one ``op`` node on ``inputs`` (None: an omitted optional input) and returns output 0
    in the dtype the converter produced."""
    names = ["" if value is None else f"x{i}" for i, value in enumerate(inputs)]
    feeds = {name: value for name, value in zip(names, inputs, strict=True) if value is not None}
    node = helper.make_node(op, names, ["y"], domain=domain, **attributes)
    graph = helper.make_graph(
        [node],
        "single",
        [
            helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for name, v in feeds.items()
        ],
        [helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)],
    )
    imports = [helper.make_opsetid("", opset)]
    if domain:
        imports.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=imports)
    module = to_torch(ir.from_proto(model))
    # The builder casts graph outputs to their inferred type; drop that cast so that the dtype
    # checked is the converter's own.
    for fx_node in list(module.graph.nodes):
        if fx_node.target is fx_functions.cast_to:
            fx_node.replace_all_uses_with(fx_node.args[0])
            module.graph.erase_node(fx_node)
    module.recompile()
    with torch.no_grad():
        (result,) = module(*tensors_from_numpy(list(feeds.values())))
    return next(iter(outputs_to_numpy([result]).values()))


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values in the same dtype."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)


def assert_reshape_keeps_batch_dynamic(
    nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray], batches: tuple[int, ...]
) -> None:
    """``nodes`` compute a shape from ``x`` ``[batch, 3]`` and Reshape ``x`` to ``y`` by it:
    under ``torch.export`` the shape stays symbolic (no ``to_int_list``), so every batch runs and
    comes back as it went in."""
    graph = helper.make_graph(
        nodes,
        "shape_arithmetic",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    program = export_program(ir.from_proto(model))
    assert "to_int_list" not in str(program.graph)
    module = program.module()
    for batch in batches:
        x = np.arange(batch * 3, dtype=np.float32).reshape(batch, 3)
        (got,) = module(torch.from_numpy(x))
        np.testing.assert_array_equal(got.numpy(), x)
