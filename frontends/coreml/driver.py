"""Drives an import: a Core ML model's MIL ops (or NeuralNetwork layers) through the shared loop.

``load_coreml`` is what the adapter calls. An ML Program package is read by coremltools' own
milproto reader (weights bit-exact from its ``weight.bin``) and converted one MIL op at a time;
a NeuralNetwork ``.mlmodel`` one layer at a time (``neural_network.py``), a pipeline of them
stage by stage (``pipeline.py``). Every op without a converter is listed before anything is
converted; every refusal is listed at once (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.native import (
    ONNX_SCALARS_KEY,
    SOURCE_NAMES_KEY,
    decode_source_names,
)
from unframe.backends.coreml.native.reading import (
    PIPELINE_TYPES,
    load_program,
    mil_type_name,
    numpy_dtype,
    open_coreml,
)
from unframe.frontends.coreml.context import FRAMEWORK, OPSET, MilContext, user_metadata
from unframe.frontends.coreml.neural_network import import_neural_network
from unframe.frontends.coreml.onnx_dtypes import restore_onnx_dtypes
from unframe.frontends.coreml.pipeline import import_pipeline
from unframe.frontends.coreml.registry import MIL_DOMAIN, import_registry
from unframe.shared_ir.conversion import ConversionLoop, NodeInfo
from unframe.shared_ir.errors import BadInputError, UnsupportedError


def load_coreml(path: Path, options: Any = None) -> ir.Model:
    """Converts the Core ML model at ``path`` (``.mlpackage`` or ``.mlmodel``) to the IR.

    Raises:
        BadInputError: a compiled bundle, a directory that is not an mlpackage, missing weights.
        UnsupportedOpsError: every MIL op or layer that cannot be converted, listed at once.
    """
    source = open_coreml(Path(path))
    if source.kind == "mlprogram":
        return import_mlprogram(source.program, source.spec, str(path))
    if source.kind in PIPELINE_TYPES:
        where = str(path)

        def read_program(stage: Any, what: str) -> ir.Model:
            return import_mlprogram(load_program(Path(path), stage, what), stage, where)

        return import_pipeline(source.spec, where, read_program)
    return import_neural_network(source.spec, str(path))


def import_mlprogram(program: Any, spec: Any, where: str) -> ir.Model:
    """Converts the ``main`` function of a MIL program to the IR."""
    registry = import_registry()
    if "main" not in program.functions:
        raise BadInputError(
            f"the ML Program has no 'main' function (it has {', '.join(program.functions)})",
            path=where, framework=FRAMEWORK,
        )  # fmt: skip
    function = program.functions["main"]
    opset = (
        int(function.opset_version)
        if function.opset_version is not None
        else spec.specificationVersion
    )
    record = decode_source_names(spec.description.metadata.userDefined.get(SOURCE_NAMES_KEY))
    ctx = MilContext(where, record)
    operations = list(function.operations)

    loop: ConversionLoop[Any] = ConversionLoop(
        framework=FRAMEWORK,
        direction="import",
        describe=lambda op: NodeInfo(op.name, op.op_type, MIL_DOMAIN, opset),
        reads=lambda op: [var.name for var in _input_vars(op)],
        writes=lambda op: [var.name for var in op.outputs],
        path=where,
    )
    loop.check_supported(
        operations, lambda op: registry.lookup(op.op_type, opset, MIL_DOMAIN) is not None
    )
    # Inputs unframe wrote as shape (1,) for a rank-0 ONNX input are rank 0 again.
    scalars = decode_source_names(spec.description.metadata.userDefined.get(ONNX_SCALARS_KEY))
    for name, var in function.inputs.items():
        dims = _dims(var.shape)
        if name in scalars and dims == [1]:
            scalar = ctx.add_input(name, _ir_dtype(var, ctx), [])
            reshaped = ctx.op1("Reshape", [scalar, ctx.ints([1])])
            ctx.bind(name, reshaped, numpy_dtype(var.dtype), dims)
            continue
        ctx.add_input(name, _ir_dtype(var, ctx), dims)

    def convert(op: Any) -> None:
        ctx.op, ctx.op_name, ctx.op_type = op, op.name, op.op_type
        converter = registry.lookup(op.op_type, opset, MIL_DOMAIN)
        if converter is None:  # the scan looks at the top block only
            raise ctx.error(f"the MIL op {op.op_type} ({op.name}) inside a block has no reader")
        results = converter(op, ctx)
        if results is None:
            return
        produced = [results] if isinstance(results, ir.Value) else list(results)
        if len(produced) != len(op.outputs):
            raise AssertionError(f"{op.op_type} converter gave {len(produced)} outputs")
        for var, value in zip(op.outputs, produced, strict=True):
            ctx.bind(var.name, value, numpy_dtype(var.dtype), _dims(var.shape))

    ctx.convert_op = convert  # cond and while_loop convert their blocks' ops with it
    loop.convert(operations, convert)
    ctx.op, ctx.op_name, ctx.op_type = None, "", ""
    outputs = []
    for var in function.outputs:
        value = ctx.var_value(var)
        if ctx.is_fixed(value) or value in outputs:
            value = ctx.identity(value, ctx.source(var.name))
        outputs.append(value)
    used = {id(v) for node in _all_nodes(ctx.nodes) for v in node.inputs if v is not None}
    used.update(id(v) for v in outputs)
    initializers = [v for v in ctx.initializers.values() if id(v) in used]
    graph = ir.Graph(
        ctx.inputs, outputs, nodes=ctx.nodes, initializers=initializers,
        opset_imports={"": OPSET}, name="main",
    )  # fmt: skip
    model = ir.Model(graph, ir_version=10, producer_name="unframe-coreml")
    model.metadata_props.update(user_metadata(spec))
    restore_onnx_dtypes(model, spec, record)
    return model


def _all_nodes(nodes: Sequence[ir.Node]) -> Iterator[ir.Node]:
    """``nodes`` and those of their subgraphs (If branches read initializers of the graph)."""
    for node in nodes:
        yield node
        for attr in node.attributes.values():
            if isinstance(attr.value, ir.Graph):
                yield from _all_nodes(list(attr.value))


def _input_vars(op: Any) -> list[Any]:
    found: list[Any] = []
    for item in op.inputs.values():
        found.extend(item if isinstance(item, tuple | list) else [item])
    return found


def _dims(shape: Sequence[Any]) -> list[int | str | None]:
    """MIL dims as IR dims: symbolic ones (flexible shapes) by their symbol's name."""
    dims: list[int | str | None] = []
    for dim in shape:
        try:
            dims.append(int(dim))
        except TypeError:
            dims.append(str(dim))
    return dims


def _ir_dtype(var: Any, ctx: MilContext) -> ir.DataType:
    found = numpy_dtype(var.dtype)
    if found is None:
        raise UnsupportedError(
            f"input {var.name!r} has MIL type {mil_type_name(var.dtype)}, which ONNX cannot hold",
            path=ctx.where, framework=FRAMEWORK,
        )  # fmt: skip
    return ir.DataType.from_numpy(found)
