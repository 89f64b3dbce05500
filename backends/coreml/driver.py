"""Drives an export: ONNX IR -> a MIL program built op by op -> a Core ML ML Program.

The shared conversion loop (``shared_ir.conversion``) scans every node first, then converts them
in order inside one MIL function; every refusal is collected and raised once, before anything is
written. Names: graph inputs and outputs keep their ONNX names, each op a converter adds is named
after its ONNX node (the op yielding the node's first output takes the node's name, the others
``<node>_<op type>``), each MIL variable that holds an ONNX value takes the value's name. Where MIL
forbids a character the name is sanitized, and the package's metadata maps it back
(``native.names``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import FRAMEWORK, MIL_DTYPES, ExportContext
from unframe.backends.coreml.native import (
    ONNX_SCALARS_KEY,
    SOURCE_NAMES_KEY,
    MilNames,
    coremltools,
    encode_source_names,
    quiet_stderr,
)
from unframe.backends.coreml.native.dtypes import HELD_AS_IS, ONNX_DTYPES_KEY
from unframe.backends.coreml.rank_reduction import NarrowWideTransposesPass
from unframe.backends.coreml.registry import Converter, ops
from unframe.shared_ir.conversion import node_opset, onnx_loop
from unframe.shared_ir.errors import BadInputError, UnsupportedOp, UnsupportedOpsError
from unframe.shared_ir.folding import FoldConstantsPass
from unframe.shared_ir.function_expansion import expand_functions
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules
from unframe.shared_ir.options import ConvertOptions
from unframe.shared_ir.passes import infer_shapes

#: The oldest target that runs float32 ML Programs with every op the converters emit.
DEFAULT_TARGET = "iOS16"
#: The upper bound of a flexible dim (ML Programs need one): batch sizes, sequence lengths and
#: image sides up to this; a larger ``--input`` size raises it for that dim, and an ``--input``
#: range ``LO..HI`` gives both bounds.
FLEXIBLE_DIM_LIMIT = 8192


def export_registry() -> OpRegistry[Converter]:
    """The export registry with every converter module loaded."""
    load_op_modules("unframe.backends.coreml.ops")
    return ops


@dataclass
class ExportedProgram:
    """The converted model (a coremltools ``MLModel``, not compiled) and its name record."""

    mlmodel: Any
    #: MIL name -> ONNX name, for every name sanitization changed.
    renamed: dict[str, str] = field(default_factory=dict)


def export_mlprogram(model: ir.Model, options: ConvertOptions | None = None) -> ExportedProgram:
    """Converts ``model`` into a Core ML ML Program.

    ``options.extra`` may hold ``precision`` (``"float32"``, the default, or ``"float16"``) and
    ``minimum_deployment_target`` (``"iOS16"``, ``"macOS14"``...). ``model`` is changed in place:
    shapes are inferred and constants folded.

    Raises:
        UnsupportedOpsError: every node without a converter, or that a converter refused.
    """
    options = options or ConvertOptions()
    registry = export_registry()
    # Function ops without a converter become their ONNX function bodies first.
    expand_functions(model, registry)
    missing = registry.unsupported_nodes(model)
    if missing:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK)
    infer_shapes(model, data_prop=True)
    FoldConstantsPass()(model)
    NarrowWideTransposesPass()(model)

    ct = coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program
    from coremltools.converters.mil.mil.block import curr_block

    target = _deployment_target(ct, options)
    precision = _precision(ct, options)
    names = MilNames()
    graph = model.graph
    imports = dict(model.opset_imports)
    opset = node_opset("", imports) or 1
    failures: list[UnsupportedOp] = []
    inputs, input_types = _inputs(ct, mb, graph, names, options, failures)
    narrowed: dict[str, str] = {}
    scalars: dict[str, str] = {}
    function = Function(
        {name: placeholder for name, (_, placeholder) in inputs.items()}, opset_version=target
    )
    with function:
        values: dict[ir.Value, Any] = {}
        claimed: dict[ir.Value, str] = {}
        for name, (value, _) in inputs.items():
            values[value] = function.inputs[name]
            claimed[value] = name
            if value.shape is not None and len(value.shape) == 0:
                values[value] = mb.squeeze(x=function.inputs[name], name=f"{name}_scalar")
                scalars[name] = "scalar"
            if value.dtype is not None and value.dtype.name not in HELD_AS_IS:
                narrowed[name] = value.dtype.name
        ctx = ExportContext(mb, values, names, opset)
        loop = onnx_loop(FRAMEWORK, "export", imports)

        def convert(node: ir.Node) -> None:
            info = loop.describe(node)
            converter = registry.lookup(node.op_type, info.opset or opset, info.domain)
            if converter is None:
                raise ctx.error("no converter")
            ctx.node = node
            # The block being built: the function's, or a cond/while_loop body's (subgraphs).
            block = curr_block()
            start = len(block.operations)
            results = list(converter(node, ctx))
            ctx.node = node  # a subgraph's nodes set it while converting
            added = len(block.operations) - start
            new_ops = list(itertools.islice(reversed(block.operations), added))[::-1]
            _record(node, ctx, results, new_ops, values, claimed)

        def convert_subgraph(subgraph: ir.Graph) -> list[Any]:
            """Converts ``subgraph``'s nodes into the block being built; its outputs' vars."""
            for inner in subgraph:
                convert(inner)
            return [ctx.var(value) for value in subgraph.outputs]

        ctx.convert_subgraph = convert_subgraph

        failures.extend(loop.run(list(graph), convert))
        if failures:
            raise UnsupportedOpsError(failures, framework=FRAMEWORK)
        outputs: list[Any] = []
        for value in graph.outputs:
            var = ctx.var(value)
            if (
                claimed.get(value) != var.name
                or any(var is out for out in outputs)
                or var.op is None
            ):
                var = mb.identity(x=var, name=names.claim(value.name or "output"))
            outputs.append(var)
            if value.dtype is not None and value.dtype.name not in HELD_AS_IS:
                narrowed[var.name] = value.dtype.name
        function.set_outputs(outputs)
    program = Program()
    program.add_function("main", function)
    with quiet_stderr():
        mlmodel = ct.convert(
            program,
            convert_to="mlprogram",
            inputs=input_types or None,
            compute_precision=precision,
            minimum_deployment_target=target,
            # Our ops as built: coremltools' default passes fuse and rename them (names are the
            # provenance the frontend reads back); the Core ML compiler optimizes on device.
            pass_pipeline=ct.PassPipeline(
                # float16: the pass that casts each op's float32 inputs to float16 (and the
                # outputs back), which compute_precision only selects inside the default
                # pipeline; then the casts of constants folded (float16 weights) and the
                # float16 -> float32 -> float16 pairs between ops dropped.
                (
                    [
                        "common::add_fp16_cast",
                        "common::const_elimination",
                        "common::cast_optimization",
                    ]
                    if precision == ct.precision.FLOAT16
                    else []
                )
                + ["common::dead_code_elimination"],
                pipeline_name="unframe",
            ),
            skip_model_load=True,
        )
    metadata = mlmodel.user_defined_metadata
    metadata[SOURCE_NAMES_KEY] = encode_source_names(names.renamed)
    if narrowed:
        metadata[ONNX_DTYPES_KEY] = encode_source_names(narrowed)
    if scalars:
        metadata[ONNX_SCALARS_KEY] = encode_source_names(scalars)
    return ExportedProgram(mlmodel, dict(names.renamed))


def _record(
    node: ir.Node,
    ctx: ExportContext,
    results: list[Any],
    new_ops: list[Any],
    values: dict[ir.Value, Any],
    claimed: dict[ir.Value, str],
) -> None:
    """Binds the node's outputs and names what the converter added after the ONNX node."""
    output_values: dict[int, ir.Value] = {}
    for index, value in enumerate(node.outputs):
        var = results[index] if index < len(results) else None
        if var is None:
            if ctx.output_used(index):
                raise ctx.error(f"output {index} ({value.name!r}) is not produced")
            continue
        values[value] = var
        output_values.setdefault(id(var), value)
    base = node.name or node.op_type
    first = True
    for op in new_ops:
        if id(op) in ctx.named_ops:
            continue
        yields_output = any(id(out) in output_values for out in op.outputs)
        if yields_output and first:
            op.name = ctx.names.claim(base)
        else:
            op.name = ctx.names.claim(f"{base}_{op.op_type}", record=False)
        first = first and not yields_output
        for position, out in enumerate(op.outputs):
            held = output_values.get(id(out))
            if held is not None and held.name and held not in claimed:
                out.name = claimed[held] = ctx.names.claim(held.name)
            elif len(op.outputs) == 1:
                out.name = op.name
            else:
                out.name = ctx.names.claim(f"{op.name}_{position}", record=False)


def _inputs(
    ct: Any,
    mb: Any,
    graph: ir.Graph,
    names: MilNames,
    options: ConvertOptions,
    failures: list[UnsupportedOp],
) -> tuple[dict[str, tuple[ir.Value, Any]], list[Any]]:
    """The function's placeholders and ``ct.convert``'s input types (flexible dims as RangeDims)."""
    from coremltools.converters.mil.mil import types

    mil_types = {"fp32": types.fp32, "fp16": types.fp16, "int32": types.int32, "bool": types.bool}
    np_types = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}
    initializers = set(graph.initializers.values())
    placeholders: dict[str, tuple[ir.Value, Any]] = {}
    input_types: list[Any] = []
    symbols: dict[str, Any] = {}
    spans = _dim_ranges(graph, options)
    for value in graph.inputs:
        if value in initializers:
            continue  # an input with an initializer is a constant here (its default)
        word = MIL_DTYPES.get(value.dtype) if value.dtype is not None else None
        if word is None or value.shape is None:
            why = (
                "its shape is unknown; give it with --input NAME=D1,D2,..."
                if word is not None
                else f"{value.dtype.name if value.dtype else 'an unknown type'} inputs: Core ML "
                "holds float32, float16, int32 (int64 as int32) and bool tensors"
            )
            failures.append(UnsupportedOp(value.name or "", "graph input", reason=why))
            continue
        spec = options.inputs.get(value.name or "")
        given = list(spec.shape) if spec is not None and spec.shape is not None else []
        # Core ML has no rank-0 inputs: a scalar is fed as shape (1,) and squeezed inside.
        mil_shape: list[Any] = [] if len(value.shape) else [1]
        ct_shape: list[Any] = list(mil_shape)
        flexible = False
        for axis, dim in enumerate(value.shape):
            hint = given[axis] if axis < len(given) else None
            span = _given_range(options, value, axis)
            if isinstance(dim, int):
                if isinstance(hint, int) and hint != dim:
                    raise BadInputError(
                        f"--input {value.name}: axis {axis} of this input is {dim}, not {hint}"
                    )
                if span is not None and not span[0] <= dim <= span[1]:
                    raise BadInputError(
                        f"--input {value.name}: axis {axis} of this input is fixed at {dim}, "
                        f"outside the range {span[0]}..{span[1]}"
                    )
                mil_shape.append(dim)
                ct_shape.append(dim)
                continue
            flexible = True
            key = _dim_key(value, axis, dim)
            span = spans.get(key)
            default = hint if isinstance(hint, int) and hint > 0 else 1
            low, high = span if span is not None else (1, max(FLEXIBLE_DIM_LIMIT, default))
            # One RangeDim per ONNX symbol: inputs that share a dim share its MIL symbol.
            range_dim = symbols.setdefault(
                key,
                ct.RangeDim(lower_bound=low, upper_bound=high, default=low if span else default),
            )
            mil_shape.append(range_dim.symbol)
            ct_shape.append(range_dim)
        name = names.claim(value.name or "input")
        placeholders[name] = (value, mb.placeholder(shape=tuple(mil_shape), dtype=mil_types[word]))
        input_types.append(
            ct.TensorType(
                name=name,
                shape=ct.Shape(tuple(ct_shape)) if flexible else tuple(ct_shape),
                dtype=np_types[word],
            )
        )
    return placeholders, input_types


def _dim_key(value: ir.Value, axis: int, dim: Any) -> str:
    """The flexible dim's identity: its ONNX symbol, or the input and axis for an unnamed one."""
    return str(dim) if dim is not None and str(dim) else f"{value.name}_{axis}"


def _given_range(options: ConvertOptions, value: ir.Value, axis: int) -> tuple[int, int] | None:
    spec = options.inputs.get(value.name or "")
    bounds = spec.bounds if spec is not None and spec.bounds is not None else ()
    return bounds[axis] if axis < len(bounds) else None


def _dim_ranges(graph: ir.Graph, options: ConvertOptions) -> dict[str, tuple[int, int]]:
    """``--input`` ranges (``LO..HI``) by flexible dim; inputs sharing a dim share its range.

    Raises:
        BadInputError: two inputs give one shared dim different ranges.
    """
    found: dict[str, tuple[int, int]] = {}
    for value in graph.inputs:
        for axis, dim in enumerate(value.shape or ()):
            span = _given_range(options, value, axis)
            if span is None or isinstance(dim, int):
                continue
            key = _dim_key(value, axis, dim)
            if found.setdefault(key, span) != span:
                low, high = found[key]
                raise BadInputError(
                    f"--input {value.name}: axis {axis} is dim {key!r}, which another input "
                    f"gives the range {low}..{high}, not {span[0]}..{span[1]}",
                    hint="give inputs that share a dim the same range",
                )
    return found


def _deployment_target(ct: Any, options: ConvertOptions) -> Any:
    wanted = str(options.extra.get("minimum_deployment_target") or DEFAULT_TARGET)
    target = getattr(ct.target, wanted, None)
    if target is None:
        known = ", ".join(t.name for t in ct.target)
        raise BadInputError(f"unknown Core ML deployment target {wanted!r}", hint=f"one of {known}")
    if target < ct.target.iOS15:
        raise BadInputError(f"ML Programs need iOS15/macOS12 or later, not {wanted}")
    return target


def _precision(ct: Any, options: ConvertOptions) -> Any:
    wanted = str(options.extra.get("precision") or "float32")
    if wanted not in ("float32", "float16"):
        raise BadInputError(f"--precision {wanted!r}: float32 or float16")
    return ct.precision.FLOAT32 if wanted == "float32" else ct.precision.FLOAT16
