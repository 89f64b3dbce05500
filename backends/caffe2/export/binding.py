"""Binding run-time parameter inputs to the values they are fed, for ``Framework.run_ir``.

Caffe2 takes an op's axes, pads, k, repeats... as arguments fixed in the net, where ONNX may take
them as tensors. In a deployed model they are constants (initializers); onnx's node tests feed them
as graph inputs instead. ``run_ir`` runs the model on given inputs, so it may bind a graph input
that only ever feeds such parameter slots to the array it is given, then export. The exported net
is then specialized to those parameter values, which ``run_ir``'s caller is told by name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_ir as ir

#: Input positions that hold parameters (not data) per ONNX op.
PARAMETER_INPUTS: dict[str, frozenset[int]] = {
    "Reshape": frozenset({1}), "Unsqueeze": frozenset({1}), "Squeeze": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}), "Pad": frozenset({1, 2, 3}), "Tile": frozenset({1}),
    "TopK": frozenset({1}), "Split": frozenset({1}), "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}), "Trilu": frozenset({1}), "ConstantOfShape": frozenset({0}),
    "Dropout": frozenset({1, 2}), "ReduceSum": frozenset({1}), "ReduceMean": frozenset({1}),
    "ReduceMax": frozenset({1}), "ReduceMin": frozenset({1}), "ReduceL1": frozenset({1}),
    "ReduceL2": frozenset({1}), "ReduceSumSquare": frozenset({1}),
    "ReduceLogSum": frozenset({1}), "ReduceLogSumExp": frozenset({1}),
    "ReduceProd": frozenset({1}), "CumSum": frozenset({1}), "Expand": frozenset({1}),
    "CenterCropPad": frozenset({1}), "OneHot": frozenset({1}), "CumProd": frozenset({1}),
    "HannWindow": frozenset({0}), "HammingWindow": frozenset({0}),
    "BlackmanWindow": frozenset({0}), "MelWeightMatrix": frozenset({0, 1, 2, 3, 4}),
    "MaxUnpool": frozenset({2}),
}  # fmt: skip


#: Ops through which a parameter may flow on its way to a parameter slot (shape arithmetic).
_ARITHMETIC = frozenset({
    "Cast", "CastLike", "Concat", "Gather", "Slice", "Add", "Sub", "Mul", "Div", "Max", "Min",
    "Neg", "Abs", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Equal", "Less", "Greater",
    "Where", "Clip", "Range", "ReduceMax", "ReduceMin", "ReduceSum", "Mod", "Floor", "Ceil",
})  # fmt: skip


def _only_parameters(value: ir.Value, seen: set[int]) -> bool:
    """Whether every use of ``value`` ends, through shape arithmetic, in a parameter slot."""
    if id(value) in seen:
        return True
    seen.add(id(value))
    uses = list(value.uses())
    if not uses:
        return False
    for user, index in uses:
        if user.domain not in ("", "ai.onnx"):
            return False
        if index in PARAMETER_INPUTS.get(user.op_type, frozenset()):
            continue
        if user.op_type not in _ARITHMETIC:
            return False
        if not all(out is not None and _only_parameters(out, seen) for out in user.outputs):
            return False
    return True


def parameter_inputs(model: ir.Model) -> list[str]:
    """Graph inputs that only ever feed parameter slots (never data), directly or by arithmetic."""
    return [
        value.name or ""
        for value in model.graph.inputs
        if value.const_value is None and _only_parameters(value, set())
    ]


def derived_from(model: ir.Model, names: set[str]) -> set[int]:
    """ids of the values computed (transitively) from the graph inputs ``names``."""
    tainted = {id(v) for v in model.graph.inputs if v.name in names}
    for node in model.graph:
        if any(v is not None and id(v) in tainted for v in node.inputs):
            tainted.update(id(v) for v in node.outputs)
    return tainted


def bind_parameter_inputs(
    model: ir.Model, inputs: Mapping[str, np.ndarray]
) -> tuple[ir.Model, dict[str, np.ndarray], list[str]]:
    """A copy of ``model`` with its fed parameter inputs made initializers.

    Returns:
        The model, the inputs left to feed, and the names bound.
    """
    wanted = [name for name in parameter_inputs(model) if name in inputs]
    if not wanted:
        return model, dict(inputs), []
    copy = ir.from_proto(ir.to_proto(model))
    for value in list(copy.graph.inputs):
        if value.name in wanted:
            copy.graph.inputs.remove(value)
            value.const_value = ir.tensor(np.asarray(inputs[value.name]), name=value.name)
            copy.graph.register_initializer(value)
    remaining = {k: v for k, v in inputs.items() if k not in wanted}
    return copy, remaining, wanted
