"""Checks on an ``.onnx`` file read from the user, made before any weight is read.

A model file is input like any other: it may name external data anywhere on the disk
(``../../etc/passwd``, an absolute path, a symlink leaving its folder), declare tensors far larger
than the bytes it holds, point at a device or a FIFO, or break ONNX's rules in ways that would
only surface when the converted model is checked, blamed on the output. Every check here looks at
shapes, types, paths and file sizes only: no weight is read or copied, so loading a large model
stays as fast as before.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.limits import check_tensor_bytes, declared_bytes


def open_regular(path: Path, *, what: str = "the model") -> tuple[int, os.stat_result]:
    """A read-only descriptor on ``path`` and its ``stat``; ``path`` must be a regular file.

    Opened without blocking, so that a FIFO cannot hang us before ``fstat`` says what it is; a
    device (``/dev/zero``) never ends and is refused the same way. The caller closes it.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInputError("no such file", path=str(path)) from None
    except OSError as error:
        raise BadInputError(f"cannot read {what}: {error.strerror}", path=str(path)) from None
    info = os.fstat(descriptor)
    if stat.S_ISREG(info.st_mode):
        os.set_blocking(descriptor, True)
        return descriptor, info
    os.close(descriptor)
    if stat.S_ISDIR(info.st_mode):
        raise BadInputError("is a directory, not an .onnx file", path=str(path))
    raise BadInputError(
        f"{what} is not a regular file (a device, FIFO or socket)",
        path=str(path),
        hint="copy the model into a file first",
    )


def regular_file_size(path: Path, *, what: str = "the model") -> int:
    """The size of ``path`` after :func:`open_regular` has found it a regular file."""
    descriptor, info = open_regular(path, what=what)
    os.close(descriptor)
    return info.st_size


# -- structure -------------------------------------------------------------------------------


def check_loaded(proto: onnx.ModelProto, model: ir.Model, path: Path) -> None:
    """Every check on a model just read from ``path``; ``proto`` may lack its mapped weights.

    Tensors first: their sizes and the places of their bytes say more about a hostile file than
    the graph errors they cause. Then the structure.
    """
    check_external_entries(proto, path)
    check_tensors(model, path)
    check_structure(proto, path)
    check_names(model, path)
    check_graphs(proto, path)
    check_if_conditions(model, path)


def check_names(model: ir.Model, path: Path) -> None:
    """Refuses a node, value or attribute name that is not UTF-8.

    protobuf does not check proto2 strings when parsing, and onnx_ir then keeps such a name as
    bytes, which only fails when a backend or the ONNX writer uses it (an internal error).
    """
    graph = model.graph
    names: list[Any] = [v.name for v in (*graph.inputs, *graph.outputs)]
    names += list(graph.initializers)
    owners: list[ir.Graph | ir.Function] = [graph, *model.functions.values()]
    for owner in owners:
        for node in ir.traversal.RecursiveGraphIterator(owner):
            names += [node.name, node.op_type, node.domain, *node.attributes]
            names += [value.name for value in (*node.inputs, *node.outputs) if value is not None]
    for name in names:
        if isinstance(name, bytes):
            raise BadInputError(
                f"not a valid ONNX model: the name {name!r} is not UTF-8",
                path=str(path),
                hint="the file is corrupt or was written by a faulty exporter",
            )


def check_structure(proto: onnx.ModelProto, path: Path) -> None:
    """``onnx.checker`` and strict type and shape inference, on the model without its weights.

    Both serialize what they are given, so they see a copy in which initializers are declared as
    graph inputs instead: the cost is that of the nodes, not of the data. A model that fails here
    would otherwise convert and then fail the same check on the written output, blamed on the
    wrong file. One rule is relaxed: a main graph's input or output without a shape is accepted
    (onnxruntime runs such models, and exporters write them).
    """
    try:
        light = _without_weights(proto)
        shapeless = [
            value.type.tensor_type
            for value in [*light.graph.input, *light.graph.output]
            if value.type.HasField("tensor_type") and not value.type.tensor_type.HasField("shape")
        ]
        for tensor_type in shapeless:
            tensor_type.shape.SetInParent()  # present for the checker, which only asks for one
        onnx.checker.check_model(light)
        for tensor_type in shapeless:
            tensor_type.ClearField("shape")  # unknown rank again, for inference
        onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid model"
        raise BadInputError(
            f"not a valid ONNX model: {first}",
            path=str(path),
            hint="the file is corrupt or was written by a faulty exporter (onnx.checker)",
        ) from None
    except UnicodeDecodeError as error:  # proto2 strings are not checked for UTF-8 when parsed
        raise BadInputError(
            f"not a valid ONNX model: a name or string in it is not UTF-8 ({error.reason} at "
            f"byte {error.start})",
            path=str(path),
            hint="the file is corrupt or was written by a faulty exporter",
        ) from None


def _without_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    light = onnx.ModelProto()
    for field, value in proto.ListFields():
        if field.name == "graph":
            light.graph.CopyFrom(_graph_without_weights(value))
        else:
            _copy_field(light, field.name, field, value)
    return light


def _graph_without_weights(graph: onnx.GraphProto) -> onnx.GraphProto:
    # Subgraphs keep theirs: a branch or loop body may not declare inputs of its own, and what
    # they hold is small (``onnx_wire`` maps the main graph's weights only).
    light = onnx.GraphProto()
    for field, value in graph.ListFields():
        if field.name != "initializer":
            _copy_field(light, field.name, field, value)
    declared = {value.name for value in graph.input}
    for tensor in graph.initializer:
        if tensor.name not in declared:
            light.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    return light


def _copy_field(
    target: onnx.ModelProto | onnx.GraphProto, name: str, field: Any, value: Any
) -> None:
    # ``is_repeated`` replaced ``label`` in protobuf 6; older releases have only ``label``.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        repeated = field.label == field.LABEL_REPEATED
    if repeated:
        getattr(target, name).extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, name).CopyFrom(value)
    else:
        setattr(target, name, value)


# -- what onnxruntime refuses and onnx.checker lets through ---------------------------------

#: The keys of a tensor's ``external_data`` entries, as onnx's ``ExternalDataInfo`` defines them.
EXTERNAL_DATA_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})


def _proto_graphs(proto: onnx.ModelProto) -> Iterator[onnx.GraphProto]:
    """The main graph and every subgraph (of its nodes and of the functions' nodes)."""
    pending: list[onnx.NodeProto] = [node for function in proto.functions for node in function.node]
    graphs = [proto.graph]
    while graphs or pending:
        if graphs:
            graph = graphs.pop()
            yield graph
            pending.extend(graph.node)
            continue
        for attribute in pending.pop().attribute:
            if attribute.HasField("g"):
                graphs.append(attribute.g)
            graphs.extend(attribute.graphs)


def _proto_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    nodes: list[onnx.NodeProto] = [node for function in proto.functions for node in function.node]
    for graph in _proto_graphs(proto):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        nodes.extend(graph.node)
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield from (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)
            for sparse in attribute.sparse_tensors:
                yield from (sparse.values, sparse.indices)


def check_external_entries(proto: onnx.ModelProto, path: Path) -> None:
    """Each external-data entry has a key onnx defines, and ``location`` comes exactly once.

    onnx_ir only warns about an unknown key and takes the last of repeated locations, where
    onnxruntime refuses the model ("model format error").
    """
    for tensor in _proto_tensors(proto):
        if not tensor.external_data and tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        name = tensor.name or "(unnamed)"
        keys = [entry.key for entry in tensor.external_data]
        unknown = sorted({key for key in keys if key not in EXTERNAL_DATA_KEYS}, key=repr)
        if unknown:
            raise BadInputError(
                f"tensor {name!r}: unknown external data key(s) "
                f"{', '.join(repr(key) for key in unknown)} (onnx allows "
                f"{', '.join(sorted(EXTERNAL_DATA_KEYS))})",
                path=str(path),
                hint="the file is corrupt or was written by a faulty exporter",
            )
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise BadInputError(
                f"tensor {name!r}: external data key(s) {', '.join(map(repr, repeated))} "
                "given more than once",
                path=str(path),
                hint="the file is corrupt or was written by a faulty exporter",
            )
        if "location" not in keys:
            raise BadInputError(
                f"tensor {name!r}: external data without a location",
                path=str(path),
                hint="the file is corrupt or was written by a faulty exporter",
            )


def check_graphs(proto: onnx.ModelProto, path: Path) -> None:
    """Every declared tensor type has an element type; no two nodes of a graph share a name."""
    for graph in _proto_graphs(proto):
        for value in (*graph.input, *graph.output, *graph.value_info):
            if _lacks_element_type(value.type):
                raise BadInputError(
                    f"not a valid ONNX model: value {value.name!r} of graph {graph.name!r} is "
                    "declared a tensor with no element type (elem_type 0, UNDEFINED)",
                    path=str(path),
                    hint="the file is corrupt or was written by a faulty exporter",
                )
        seen: set[str] = set()
        for node in graph.node:
            if not node.name:
                continue
            if node.name in seen:
                raise BadInputError(
                    f"not a valid ONNX model: two nodes of graph {graph.name!r} are named "
                    f"{node.name!r}",
                    path=str(path),
                    hint="node names must be unique in a graph (onnxruntime refuses the model)",
                )
            seen.add(node.name)


def _lacks_element_type(value_type: onnx.TypeProto) -> bool:
    kind = value_type.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        return getattr(value_type, kind).elem_type == onnx.TensorProto.UNDEFINED
    if kind in ("sequence_type", "optional_type"):
        inner = getattr(value_type, kind)
        return inner.HasField("elem_type") and _lacks_element_type(inner.elem_type)
    if kind == "map_type":
        return value_type.map_type.HasField("value_type") and _lacks_element_type(
            value_type.map_type.value_type
        )
    return False


def check_if_conditions(model: ir.Model, path: Path) -> None:
    """An If's condition, where its type and shape are known, is one boolean."""
    owners: list[ir.Graph | ir.Function] = [model.graph, *model.functions.values()]
    for owner in owners:
        for node in ir.traversal.RecursiveGraphIterator(owner):
            if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.inputs:
                continue
            condition = node.inputs[0]
            if condition is None:
                continue
            dtype, shape = condition.dtype, condition.shape
            count = None
            if shape is not None and all(isinstance(dim, int) and dim >= 0 for dim in shape):
                count = declared_bytes(shape.numpy(), 8)
            if (dtype is not None and dtype != ir.DataType.BOOL) or count not in (None, 1):
                described = f"{dtype.name.lower() if dtype else 'tensor'}"
                if shape is not None:
                    described += f"{list(shape)}"
                raise BadInputError(
                    f"not a valid ONNX model: node {node.name or '(unnamed)'!r} (If): its "
                    f"condition {condition.name!r} is {described}, not one boolean",
                    path=str(path),
                    hint="the file is corrupt or was written by a faulty exporter",
                )


# -- tensors ---------------------------------------------------------------------------------


def check_tensors(model: ir.Model, path: Path) -> None:
    """Every tensor's type and declared size, and where its bytes lie, before any is read.

    External data must lie in the model's folder or below it: after resolving symlinks, inside
    the folder the model was named in, or the folder the model file really lives in (a model
    folder of symlinks into a cache). Functions' constants get the model's folder as their base,
    as the graph's do (``onnx_ir`` sets it for graphs only).
    """
    folder = path.parent
    roots = {os.path.realpath(folder), os.path.dirname(os.path.realpath(path))}
    for tensor in _all_tensors(model):
        name = tensor.name or "(unnamed)"
        nbytes = _declared_bytes(tensor, name, path)
        check_tensor_bytes(nbytes, what=f"tensor {name!r}", path=str(path))
        if isinstance(tensor, ir.ExternalTensor):
            if not tensor.base_dir:
                tensor.base_dir = folder
            _check_external(tensor, name, nbytes, folder, roots, path)
        elif isinstance(tensor, ir.serde.TensorProtoTensor):
            _check_inline(tensor.raw, name, nbytes, path)
        elif isinstance(tensor, ir.StringTensor):
            _check_count(len(tensor.raw), tensor.size, name, "strings", path)


def _all_tensors(model: ir.Model) -> Iterator[ir.TensorProtocol]:
    for graph in model.graphs():
        for value in graph.initializers.values():
            if value.const_value is not None:
                yield value.const_value
    owners: list[ir.Graph | ir.Function] = [model.graph, *model.functions.values()]
    for owner in owners:
        for node in ir.traversal.RecursiveGraphIterator(owner):
            for attribute in node.attributes.values():
                if not isinstance(attribute, ir.Attr):
                    continue
                if attribute.type == ir.AttributeType.TENSOR:
                    yield attribute.as_tensor()
                elif attribute.type == ir.AttributeType.TENSORS:
                    yield from attribute.as_tensors()


def _declared_bytes(tensor: ir.TensorProtocol, name: str, path: Path) -> int:
    try:
        dtype = tensor.dtype
    except ValueError:
        raise BadInputError(f"tensor {name!r} has an unknown data type", path=str(path)) from None
    if dtype == ir.DataType.UNDEFINED:
        raise BadInputError(
            f"tensor {name!r} has no data type (data_type 0, UNDEFINED)", path=str(path)
        )
    # Strings have no fixed width: count one byte each for the limit, the strings are checked
    # against their count.
    bitwidth = 8 if dtype == ir.DataType.STRING else dtype.bitwidth
    try:
        return declared_bytes(tensor.shape.numpy(), bitwidth)
    except ValueError as error:
        raise BadInputError(f"tensor {name!r} has a {error}", path=str(path)) from None


def _check_external(
    tensor: ir.ExternalTensor,
    name: str,
    nbytes: int,
    folder: Path,
    roots: set[str],
    path: Path,
) -> None:
    location = os.fspath(tensor.location)

    def refuse(
        why: str, hint: str = "external data must be a file in the model's folder"
    ) -> BadInputError:
        return BadInputError(
            f"tensor {name!r}: external data location {location!r} {why}",
            path=str(path),
            hint=hint,
        )

    truncated = "the data file is truncated or does not belong to this model"

    if not location:
        raise refuse("is empty")
    if not isinstance(location, str):  # protobuf keeps a proto2 string that is not UTF-8 as bytes
        raise refuse("is not UTF-8")
    if "\0" in location:
        raise refuse("holds a NUL character")
    if os.path.isabs(location):
        raise refuse("is an absolute path")
    joined = os.path.normpath(os.path.join(os.path.abspath(folder), location))
    if not _inside(joined, os.path.normpath(os.path.abspath(folder))):
        raise refuse("leaves the model's folder")
    real = os.path.realpath(joined)
    if not any(_inside(real, root) for root in roots):
        raise refuse(f"leaves the model's folder through a symlink (to {real})")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise refuse("names a file that does not exist") from None
    except OSError as error:
        raise refuse(f"cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise refuse("is not a regular file (a directory, device, FIFO or socket)")
    if info.st_nlink > 1:
        # A hard link can bring any file of the filesystem into the folder; onnx_ir refuses to
        # read such data too, so refusing it here keeps every writer's answer the same.
        raise refuse(
            f"is a file with {info.st_nlink} hard links", "copy the data file so it has one"
        )
    offset = tensor.offset or 0
    if offset > info.st_size:
        raise refuse(
            f"has offset {offset}, beyond the file's end ({info.st_size} bytes)", truncated
        )
    available = info.st_size - offset
    length = tensor.length
    if length is not None and length > available:
        raise refuse(
            f"has offset {offset} and length {length}, beyond the file's end "
            f"({info.st_size} bytes)",
            truncated,
        )
    if length is not None and length != nbytes:
        raise refuse(f"holds {length} bytes where its shape and type declare {nbytes}", truncated)
    if nbytes > available:
        raise refuse(
            f"holds {available} bytes after offset {offset} where {nbytes} are declared", truncated
        )


def _inside(candidate: str, root: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep)


def _check_inline(proto: onnx.TensorProto, name: str, nbytes: int, path: Path) -> None:
    if proto.HasField("raw_data"):
        if len(proto.raw_data) != nbytes:
            raise BadInputError(
                f"tensor {name!r} holds {len(proto.raw_data)} bytes of raw data where its shape "
                f"and type declare {nbytes}",
                path=str(path),
            )
        return
    count = 1
    for dim in proto.dims:
        count *= dim
    data_type = proto.data_type
    if data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128):
        expected = 2 * count
    elif ir.DataType(data_type).bitwidth < 8:
        expected = nbytes  # packed: one byte of values in each int32_data entry
    else:
        expected = count
    field = onnx.helper.tensor_dtype_to_field(data_type)
    _check_count(len(getattr(proto, field)), expected, name, field, path)


def _check_count(present: int, expected: int, name: str, field: str, path: Path) -> None:
    if present != expected:
        raise BadInputError(
            f"tensor {name!r} holds {present} values in {field} where its shape declares "
            f"{expected}",
            path=str(path),
        )
