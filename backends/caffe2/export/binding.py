"""Graph inputs that only feed parameter slots (axes, pads, k, repeats, shapes...).

ONNX may take an op's axes, pads or sizes as tensors where Caffe2 mostly takes arguments. The
converters compute with such tensors at run time where Caffe2 has a way to (see
``ops/_runtime.py``), and refuse the node where it has none. Nothing binds these inputs to fed
values any more; ``parameter_inputs`` and ``derived_from`` remain for the driver's dry run
(``driver.unsupported``), which still leaves nodes fed by them out of its findings.
"""

from __future__ import annotations

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
