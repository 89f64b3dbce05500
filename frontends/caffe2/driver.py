"""Drives an import: init net -> initializers, inputs from value_info, ops in net order."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import (
    GIVEN_FILL_TYPES,
    IR_DTYPES,
    NUMPY_DTYPES,
    Caffe2Model,
    DataType,
    Detached,
    Workspace,
    attached_op,
    caffe2_pb2,
    data_inputs,
    get_floats,
    get_ints,
    placeholder_inputs,
    subnets,
)
from unframe.frontends.caffe2.arguments import sort_unread, warn_ignored
from unframe.frontends.caffe2.context import (
    FRAMEWORK,
    OPSET,
    Args,
    ImportContext,
    ShapeNeededError,
)
from unframe.frontends.caffe2.registry import DOMAIN, ops
from unframe.shared_ir.conversion import ConversionLoop, NodeInfo
from unframe.shared_ir.errors import (
    BadInputError,
    LimitExceededError,
    UnsupportedError,
    UnsupportedOp,
    UnsupportedOpsError,
)
from unframe.shared_ir.limits import check_tensor_bytes, declared_bytes
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules

#: The typed fills whose values the importer reads itself, and their numpy types.
_FILL_DTYPES = {
    op_type: NUMPY_DTYPES[data_type]
    for op_type, data_type in GIVEN_FILL_TYPES.items()
    if data_type != DataType.Value("STRING")
}


def import_registry() -> OpRegistry[Any]:
    """The import registry with every converter module loaded."""
    load_op_modules("unframe.frontends.caffe2.ops")
    return ops


def import_caffe2(
    model: Caffe2Model, options: Any = None, *, structure_only: bool = False
) -> ir.Model:
    """Converts a Caffe2 model to the IR.

    Args:
        model: the nets as ``read_model`` returns them; a model without an init net must have
            every weight blob filled some other way (the zoo nets get random weights first).
        options: a ``ConvertOptions``; its ``inputs`` (name -> InputSpec) override value_info.
        structure_only: for ``inspect``: a net without weights is accepted (its weights become
            initializers without values), and an op that cannot be imported (no converter, a
            shape that is unknown) becomes an opaque node of domain ``caffe2``, so that the
            graph's inputs, outputs and ops can be listed. Never use the result to convert.

    Raises:
        UnsupportedOpsError: listing every op type the frontend does not know, before converting.
        BadInputError: a blob read before it is written, malformed arguments.
    """
    registry = import_registry()
    net = model.predict_net
    where = str(model.directory) if model.directory is not None else "predict_net"
    missing = _missing_converters(net, registry)
    if missing and not structure_only:
        raise UnsupportedOpsError(missing, framework=FRAMEWORK, direction="import", path=where)
    ctx = ImportContext(where)
    specs = getattr(options, "inputs", None) or {}
    placeholders = placeholder_inputs(model, specs)
    if model.init_net is not None:
        _load_init_net(model.init_net, ctx, where, placeholders, model.init_values)
    elif structure_only:
        for blob in _unpublished_weights(model, specs):
            ctx.add_initializer(blob, None)
    _add_inputs(model, ctx, specs)
    convert = functools.partial(_convert_ops, registry=registry, structure_only=structure_only)
    ctx.convert_net = convert
    convert(net, ctx)
    outputs = []
    for blob in net.external_output or _dangling(net):
        if blob not in ctx.blobs:
            raise BadInputError(
                f"external_output {blob!r} is never written", path=where, framework=FRAMEWORK
            )
        value = ctx.blobs[blob]
        if value in ctx.inputs or value.name in ctx.initializers:
            value = ctx.identity(value, blob)
        outputs.append(value)
    opsets = {"": OPSET}
    if any(node.domain == DOMAIN for node in ctx.nodes):
        opsets[DOMAIN] = 1
    graph = ir.Graph(
        ctx.inputs, outputs, nodes=ctx.nodes, initializers=list(ctx.initializers.values()),
        opset_imports=opsets, name=net.name or "caffe2",
    )  # fmt: skip
    return ir.Model(graph, ir_version=10, producer_name="unframe-caffe2")


def _unpublished_weights(model: Caffe2Model, specs: dict[str, Any]) -> list[str]:
    """The weights of a net published without them (the model zoo's pbtxt files).

    Its data inputs are the blobs value_info or ``--input`` names, else the first external
    input (Caffe2's convention); the other external inputs that ops read are its weights.
    """
    declared = set(specs) | set(model.value_info)
    names = data_inputs(model, specs)
    if not declared and names:
        declared = {names[0]}
    return [blob for blob in names if blob not in declared]


def _convert_ops(
    net: caffe2_pb2.NetDef,
    ctx: ImportContext,
    *,
    registry: OpRegistry[Any],
    structure_only: bool = False,
) -> None:
    """Converts ``net``'s ops in order into ``ctx`` (the main net's context or a subnet's).

    The shared conversion loop (``shared_ir.conversion``) runs them: an op a converter refuses
    does not stop the others, ops that read what it would have written are skipped, and every
    refusal is raised at the end in one UnsupportedOpsError. Bad input (malformed arguments, a
    blob read before written) raises at once. Arguments that Caffe2's operator does not read
    either are warned about (``arguments.py``). With ``structure_only`` a refused op becomes an
    opaque node (see ``import_caffe2``).
    """
    loop: ConversionLoop[tuple[int, caffe2_pb2.OperatorDef]] = ConversionLoop(
        framework=FRAMEWORK,
        direction="import",
        describe=lambda item: _describe(item, ctx),
        reads=lambda item: list(item[1].input),
        writes=lambda item: list(item[1].output),
        path=ctx.where,
    )

    def convert(item: tuple[int, caffe2_pb2.OperatorDef]) -> None:
        ctx.index, ctx.op = item
        built = len(ctx.nodes)
        try:
            _convert_op(item[1], ctx, registry)
        except (UnsupportedError, ShapeNeededError) as error:
            if structure_only and not isinstance(error, UnsupportedOpsError):
                del ctx.nodes[built:]  # what the converter built before it gave up
                ctx.opaque()
                return
            if isinstance(error, UnsupportedError) and not isinstance(error, UnsupportedOpsError):
                # The list names the op: its entry gives the reason without the location.
                raise UnsupportedError(ctx.refusal(error).reason) from error
            raise

    failures = loop.run(list(enumerate(net.op)), convert)
    ctx.op = None
    loop.finish(failures)


def _describe(item: tuple[int, caffe2_pb2.OperatorDef], ctx: ImportContext) -> NodeInfo:
    """An op's entry in the list of refusals: its name (``op N`` if it has none) in its scope."""
    index, op = item
    name = op.name or f"op {index}"
    return NodeInfo(f"{ctx.scope}/{name}" if ctx.scope is not None else name, op.type)


def _convert_op(op: caffe2_pb2.OperatorDef, ctx: ImportContext, registry: OpRegistry[Any]) -> None:
    converter = registry.lookup(op.type, 1, DOMAIN)
    if converter is None:
        raise ctx.unsupported("no caffe2 import converter")
    args = Args(op, ctx)
    for blob in op.input:
        ctx.read(blob)
    converter(op, args, ctx)
    lost, ignored = sort_unread(op, args.unread())
    if lost:
        raise ctx.unsupported(
            f"argument(s) {', '.join(repr(n) for n in lost)} change what Caffe2's {op.type} "
            "computes, and this importer does not read them"
        )
    if ignored:
        warn_ignored(ctx.where, ctx.location(), op, ignored)


def _missing_converters(
    net: caffe2_pb2.NetDef, registry: OpRegistry[Any], scope: str = ""
) -> list[UnsupportedOp]:
    """Every op of ``net`` and of its subnets (If branches, loop bodies) without a converter."""
    missing = []
    for i, op in enumerate(net.op):
        if registry.lookup(op.type, 1, DOMAIN) is None:
            missing.append(
                UnsupportedOp(
                    node=scope + (op.name or f"op {i}"),
                    op_type=op.type,
                    reason="no caffe2 import converter",
                )
            )
        for arg in op.arg:
            for subnet in subnets(arg):
                inner = f"{scope}{op.name or f'op {i}'}/{arg.name}: "
                missing.extend(_missing_converters(subnet, registry, inner))
    return missing


def _load_init_net(
    init_net: caffe2_pb2.NetDef,
    ctx: ImportContext,
    where: str,
    placeholders: set[str],
    detached: Detached,
) -> None:
    for index, op in enumerate(init_net.op):
        array: np.ndarray
        if op.output and all(b in placeholders for b in op.output):
            continue
        names = [arg.name for arg in op.arg]
        values_at = len(names) - 1 - names[::-1].index("values") if "values" in names else -1
        # Fills with inputs or a ``dtype`` argument (which picks the values' type) are left to
        # the executor, which implements those.
        given = op.type in _FILL_DTYPES and not op.input and "dtype" not in names
        given = given and {"shape", "values"} <= set(names)
        held = [i for i in range(len(names)) if (index, i) in detached]
        if held and not (given and held == [values_at]):
            op = attached_op(op, index, detached)
            held = []
        args = {arg.name: arg for arg in op.arg}
        shape = [int(d) for d in args["shape"].ints] if "shape" in args else None
        what = f"init net op {index} ({op.type})"
        what += f" (blob {op.output[0]!r})" if op.output else ""
        if shape is not None and any(d < 0 for d in shape):
            raise BadInputError(
                f"{what}: shape {shape} has a negative dimension", path=where, framework=FRAMEWORK
            )
        if given and shape is not None:
            values = args["values"]
            if held:
                raw = detached[index, values_at][1]
            else:
                raw = get_floats(values) if values.floats else get_ints(values)
            if raw.size != math.prod(shape):
                raise BadInputError(
                    f"{what}: fills {raw.size} values into shape {shape} "
                    f"({math.prod(shape)} elements)",
                    path=where, framework=FRAMEWORK,
                )  # fmt: skip
            array = raw.astype(_FILL_DTYPES[op.type], copy=False).reshape(shape)
        elif op.type == "ConstantFill" and shape is not None and not op.input:
            dtype = IR_DTYPES.get(args["dtype"].i if "dtype" in args else 1, ir.DataType.FLOAT)
            _check_declared(shape, dtype.bitwidth, what, where)
            value_arg = args.get("value")
            value = 0.0
            if value_arg is not None:
                value = value_arg.f if value_arg.HasField("f") else float(value_arg.i)
            # Built when read (by an exporter or a converter), never just to inspect the net.
            for blob in op.output:
                ctx.add_initializer(blob, _lazy_full(blob, shape, value, dtype))
            continue
        else:
            if shape is not None:
                _check_declared(shape, 64, what, where)
            array = _run_fill(init_net, op, index, where)
            if shape is not None and array.size != math.prod(shape):
                raise BadInputError(
                    f"{what}: fills {array.size} values into shape {shape}",
                    path=where, framework=FRAMEWORK,
                )  # fmt: skip
            if shape is not None:
                array = array.reshape(shape)
        for blob in op.output:
            ctx.add_initializer(blob, array)


def _check_declared(shape: list[int], bitwidth: int, what: str, where: str) -> None:
    """LimitExceededError where a fill declares more bytes than one tensor may hold."""
    try:
        check_tensor_bytes(declared_bytes(shape, bitwidth), what=f"{what}: shape {shape}")
    except LimitExceededError as error:
        error.path, error.framework = where, FRAMEWORK
        raise


def _lazy_full(blob: str, shape: list[int], value: float, dtype: ir.DataType) -> ir.LazyTensor:
    def build() -> ir.Tensor:
        return ir.Tensor(np.full(shape, value, dtype=dtype.numpy()), name=blob)

    return ir.LazyTensor(build, dtype, ir.Shape(shape), name=blob)


def _run_fill(
    init_net: caffe2_pb2.NetDef, op: caffe2_pb2.OperatorDef, index: int, where: str
) -> np.ndarray:
    """Other init-net ops (random fills, casts) run on the reference executor."""
    workspace = Workspace()
    single = caffe2_pb2.NetDef()
    single.op.append(op)
    try:
        workspace.run(single)
    except Exception as error:
        raise BadInputError(
            f"init net op {index} ({op.type}) cannot be evaluated: {error}",
            path=where, framework=FRAMEWORK,
        ) from error  # fmt: skip
    return np.asarray(workspace.fetch(op.output[0]))


def _add_inputs(model: Caffe2Model, ctx: ImportContext, specs: dict[str, Any]) -> None:
    names = [b for b in data_inputs(model, specs) if b not in ctx.blobs]
    for blob in names:
        spec = specs.get(blob)
        elem, dims = model.value_info.get(blob, (1, None))
        dtype = ir.DataType(elem) if elem else ir.DataType.FLOAT
        shape: list[int | str | None] | None = (
            [None if d == -1 else d for d in dims] if dims is not None else None
        )
        if spec is not None:
            if spec.shape is not None:
                shape = list(spec.shape)
            if spec.dtype is not None:
                dtype = ir.DataType.from_numpy(spec.dtype)
        ctx.add_input(blob, dtype, shape)


def _dangling(net: caffe2_pb2.NetDef) -> list[str]:
    """Blobs written and never read: the outputs of a net that declares none."""
    read = {b for op in net.op for b in op.input}
    outs: list[str] = []
    for op in net.op:
        outs.extend(b for b in op.output if b not in read and b not in outs)
    return outs
