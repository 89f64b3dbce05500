"""Restores the ONNX element types of an imported package's inputs and outputs.

Core ML holds int64 and the narrower integers as int32, double as float32 and bool inputs and
outputs as float32; unframe's backend records each graph input's and output's ONNX type in the
package (``native.dtypes.ONNX_DTYPES_KEY``). Here an input takes its recorded type again and is
cast to the type the program computes in; an output is cast back to its recorded type. Packages
from other producers have no record and are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.native import decode_source_names, source_name
from unframe.backends.coreml.native.dtypes import ONNX_DTYPES_KEY


def restore_onnx_dtypes(model: ir.Model, spec: Any, record: Mapping[str, str]) -> None:
    """Casts ``model``'s recorded inputs and outputs back to their ONNX types (in place).

    ``record`` maps MIL names to the ONNX names the frontend gave the values.
    """
    recorded = decode_source_names(spec.description.metadata.userDefined.get(ONNX_DTYPES_KEY))
    if not recorded:
        return
    wanted: dict[str, ir.DataType] = {}
    for mil_name, type_name in recorded.items():
        dtype = getattr(ir.DataType, type_name, None)
        if isinstance(dtype, ir.DataType):
            wanted[source_name(record, mil_name)] = dtype
    graph = model.graph
    taken = {v.name for node in graph for v in node.outputs} | {v.name for v in graph.inputs}
    taken |= set(graph.initializers)

    def fresh(base: str) -> str:
        name, count = f"{base}__held", 0
        while name in taken:
            count += 1
            name = f"{base}__held{count}"
        taken.add(name)
        return name

    for position, held in enumerate(list(graph.inputs)):
        dtype = wanted.get(held.name or "")
        if dtype is None or held.dtype in (None, dtype) or held.name in graph.initializers:
            continue
        name = held.name or ""
        fed = ir.Value(name=name, type=ir.TensorType(dtype), shape=held.shape)
        graph.inputs[position] = fed
        to = held.dtype
        cast = ir.Node("", "Cast", [fed], [ir.AttrInt64("to", to)], name=fresh(f"{name}/cast"))
        held.replace_all_uses_with(cast.outputs[0])
        converted = cast.outputs[0]
        converted.name, converted.dtype, converted.shape = fresh(name), to, held.shape
        if len(graph):
            graph.insert_before(graph.node(0), cast)
        else:
            graph.append(cast)
    # Outputs by position: a constant output's value may have had to yield its name.
    output_names = [source_name(record, o.name) for o in spec.description.output]
    for position, held in enumerate(list(graph.outputs)):
        key = output_names[position] if position < len(output_names) else held.name or ""
        dtype = wanted.get(key)
        if dtype is None or held.dtype in (None, dtype):
            continue
        name = held.name or ""
        cast = ir.Node("", "Cast", [held], [ir.AttrInt64("to", dtype)], name=fresh(f"{name}/cast"))
        held.name = fresh(name)
        restored = cast.outputs[0]
        restored.name, restored.dtype, restored.shape = name, dtype, held.shape
        graph.append(cast)
        graph.outputs[position] = restored
