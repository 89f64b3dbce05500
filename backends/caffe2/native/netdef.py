"""The Caffe2 model format: a directory holding a predict net, an init net and value_info.json.

Caffe2 saves a model as two serialized ``NetDef`` messages: ``predict_net.pb`` (the computation)
and ``init_net.pb`` (fill ops that create the weights). The model zoo adds ``value_info.json``,
``{"data": [elem_type, [1, 3, 224, 224]]}``, where ``elem_type`` is an ONNX ``TensorProto`` data
type number. Nets may also be stored in protobuf text format (``predict_net.pbtxt``).

Parsing is strict: protobuf happily parses many byte strings as *some* message, so after parsing we
check that the result looks like a NetDef someone wrote on purpose.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from onnx import TensorProto

from unframe.backends.caffe2.native import caffe2_pb2, values, wire
from unframe.shared_ir.errors import BadInputError

FRAMEWORK = "caffe2"
PREDICT_NAMES = ("predict_net.pb", "predict_net.pbtxt")
INIT_NAMES = ("init_net.pb", "init_net.pbtxt")
VALUE_INFO_NAME = "value_info.json"

ValueInfo = dict[str, tuple[int, list[int]]]
#: The element types value_info.json may name: ONNX's, but for UNDEFINED.
_ONNX_ELEM_TYPES = frozenset(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}


@dataclass
class Caffe2Model:
    """A Caffe2 model: its two nets, the zoo's input description and where it was read from.

    ``init_net`` is None for nets published without weights (the model zoo's pbtxt files).
    ``init_values`` holds the init net's large value lists where it was read detached
    (``read_model(..., detach_weights=True)``); its messages then lack them.
    """

    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef | None
    value_info: ValueInfo = field(default_factory=dict)
    directory: Path | None = None
    init_values: wire.Detached = field(default_factory=dict)


# -- reading ------------------------------------------------------------------------------------
def read_model(
    path: Path, *, allow_missing_init: bool = False, detach_weights: bool = False
) -> Caffe2Model:
    """Reads the model at ``path``: a model directory, or a predict net file inside one.

    Args:
        path: the directory, or its ``predict_net.pb``/``.pbtxt`` (any file whose name contains
            ``predict`` finds its init net by replacing that with ``init``).
        allow_missing_init: accept a model without an init net (then ``init_net`` is None), as
            the model zoo publishes its text-format nets.
        detach_weights: leave the init net's large value lists out of its messages and return
            them in ``init_values`` (for a reader that takes them from there, the importer): each
            weight is then copied at most once, and packed ones not at all.

    Raises:
        BadInputError: naming the file that is missing, truncated or not a NetDef.
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError("no such file or directory", path=str(path), framework=FRAMEWORK)
    if path.is_dir():
        directory = path
        predict_path = _first_existing(directory, PREDICT_NAMES)
        if predict_path is None:
            raise BadInputError(
                f"not a Caffe2 model directory: it holds no {' or '.join(PREDICT_NAMES)}",
                path=str(path),
                framework=FRAMEWORK,
            )
    else:
        directory = path.parent
        predict_path = path
    predict_net = read_netdef(predict_path)
    init_path = _init_path_for(predict_path)
    init_net: caffe2_pb2.NetDef | None = None
    init_values: wire.Detached = {}
    if init_path is not None and detach_weights and not _is_text(init_path):
        init_net, init_values = _parse(
            _read_mapped(init_path), str(init_path), allow_empty=True, detach=True
        )
    elif init_path is not None:
        init_net = read_netdef(init_path, allow_empty=True)
    elif not allow_missing_init:
        raise BadInputError(
            f"the model has no init net ({' or '.join(INIT_NAMES)} next to {predict_path.name}), "
            "so it has no weights",
            path=str(directory),
            framework=FRAMEWORK,
        )
    value_info_path = directory / VALUE_INFO_NAME
    value_info = read_value_info(value_info_path) if value_info_path.is_file() else {}
    return Caffe2Model(predict_net, init_net, value_info, directory, init_values)


def read_netdef(path: Path, *, allow_empty: bool = False) -> caffe2_pb2.NetDef:
    """Reads one NetDef, binary or (for ``.pbtxt``/``.prototxt``/``.txt``) protobuf text.

    Args:
        path: the file.
        allow_empty: accept a net without ops (an init net of a model without weights).
    """
    path = Path(path)
    data = _read_mapped(path)
    if _is_text(path):
        return parse_netdef_text(bytes(data), str(path), allow_empty=allow_empty)
    return parse_netdef(data, str(path), allow_empty=allow_empty)


def _is_text(path: Path) -> bool:
    return path.suffix.lower() in (".pbtxt", ".prototxt", ".txt")


def _read_mapped(path: Path) -> memoryview:
    """The file's bytes as a read-only mapping.

    The weights' pages are read once, by protobuf's copy or the detached reader's gather,
    straight from the page cache; packed weights are handed out as views of the mapping.
    """
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return memoryview(b"")
            try:
                return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
            except (OSError, ValueError):  # a file that cannot be mapped (a pipe, a special file)
                return memoryview(handle.read())
    except OSError as error:
        raise BadInputError(
            f"cannot read: {error.strerror}", path=str(path), framework=FRAMEWORK
        ) from error


def _releaser(data: memoryview) -> Callable[[int, int], None] | None:
    """Drops a mapping's pages from this process once read (they stay in the page cache).

    Unpacked floats are gathered into new memory; without this, the file's pages they were
    gathered from would stay resident beside them until the mapping goes.
    """
    mapping = data.obj
    if not isinstance(mapping, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return None

    def release(start: int, stop: int) -> None:
        first = start - start % mmap.PAGESIZE
        mapping.madvise(mmap.MADV_DONTNEED, first, stop - first)

    return release


def parse_netdef(
    data: bytes | bytearray | memoryview, where: str, *, allow_empty: bool = False
) -> caffe2_pb2.NetDef:
    """Parses serialized NetDef bytes; ``where`` names the source in error messages.

    Large float lists (weights) are moved past protobuf (``native/wire.py``); anything that path
    does not expect is parsed by protobuf alone, which also reports corrupt data.
    """
    return _parse(data, where, allow_empty=allow_empty, detach=False)[0]


def _parse(
    data: bytes | bytearray | memoryview, where: str, *, allow_empty: bool, detach: bool
) -> tuple[caffe2_pb2.NetDef, wire.Detached]:
    """The parsed, checked NetDef, and its large lists where ``detach`` leaves them out of it."""
    _reject_foreign_content(data, where)
    found = None
    detached: wire.Detached = {}
    try:
        try:
            if detach:
                release = _releaser(data) if isinstance(data, memoryview) else None
                net, detached = wire.parse_netdef_detached(data, release)
            else:
                net, found = wire.parse_netdef_with_lists(data)
        except wire.WireError:  # not a net this path handles: protobuf alone reads it
            net = caffe2_pb2.NetDef.FromString(data)
    except DecodeError as error:
        raise BadInputError(
            f"not a Caffe2 NetDef: the protobuf data is truncated or corrupt ({error})",
            path=where,
            framework=FRAMEWORK,
        ) from error
    _check_netdef(net, where, allow_empty=allow_empty)
    if found is not None:
        values.keep_read(net, found)
    return net, detached


def parse_netdef_text(
    data: bytes | str, where: str, *, allow_empty: bool = False
) -> caffe2_pb2.NetDef:
    """Parses a NetDef written in protobuf text format."""
    if isinstance(data, bytes):
        _reject_foreign_content(data, where)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadInputError(
                "not a protobuf text file: it is not UTF-8 text (a binary .pb named .pbtxt?)",
                path=where,
                framework=FRAMEWORK,
            ) from error
    else:
        text = data
    net = caffe2_pb2.NetDef()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as error:
        # protobuf quotes the offending line as it is: a form feed in it would break our one line.
        reason = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))
        raise BadInputError(
            f"not a Caffe2 NetDef in protobuf text format: {reason}",
            path=where,
            framework=FRAMEWORK,
        ) from error
    _check_netdef(net, where, allow_empty=allow_empty)
    return net


def read_value_info(path: Path) -> ValueInfo:
    """Reads a model-zoo ``value_info.json``: ``{blob: [onnx_elem_type, [dims...]]}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(
            f"not a readable JSON file: {error}", path=str(path), framework=FRAMEWORK
        ) from error
    if not isinstance(raw, dict):
        raise BadInputError(
            'value_info must be a JSON object {"blob": [elem_type, [dims]]}',
            path=str(path),
            framework=FRAMEWORK,
        )
    info: ValueInfo = {}
    for name, entry in raw.items():
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and _is_int(entry[0])
            and isinstance(entry[1], list)
            and all(_is_int(d) for d in entry[1])
        ):
            raise BadInputError(
                f"value_info entry {name!r} must be [elem_type, [dims...]] with integers, "
                f"got {entry!r}",
                path=str(path),
                framework=FRAMEWORK,
            )
        elem_type, dims = int(entry[0]), [int(d) for d in entry[1]]
        if elem_type not in _ONNX_ELEM_TYPES:
            raise BadInputError(
                f"value_info entry {name!r}: element type {elem_type} is not an ONNX "
                "TensorProto data type (1 is float, 7 int64)",
                path=str(path),
                framework=FRAMEWORK,
            )
        if any(d < -1 for d in dims):  # -1 is an unknown size, as the Caffe2 writer marks one
            raise BadInputError(
                f"value_info entry {name!r}: shape {dims} has a negative dimension other than "
                "-1 (unknown)",
                path=str(path),
                framework=FRAMEWORK,
            )
        info[name] = (elem_type, dims)
    return info


def subnets(arg: caffe2_pb2.Argument) -> list[caffe2_pb2.NetDef]:
    """The nets an argument holds (If's branches, a loop's body)."""
    return [arg.n] if arg.HasField("n") else list(arg.nets)


def blobs_read(net: caffe2_pb2.NetDef) -> set[str]:
    """Blobs the ops of ``net`` and of its subnets read."""
    read = {blob for op in net.op for blob in op.input}
    for op in net.op:
        for arg in op.arg:
            for subnet in subnets(arg):
                read |= blobs_read(subnet)
    return read


def placeholder_inputs(model: Caffe2Model, named: Iterable[str] = ()) -> set[str]:
    """Data inputs that the init net fills with a ConstantFill only to declare them.

    Nets saved by hand often hold ``ConstantFill -> data`` in the init net; that blob is still the
    net's input when value_info or ``named`` (the caller's input specs) names it, or when it is the
    first external input. Other ConstantFills are constants (a zero bias).
    """
    if model.init_net is None:
        return set()
    filled = {b for op in model.init_net.op if op.type == "ConstantFill" for b in op.output}
    external = list(model.predict_net.external_input)
    declared = set(named) | set(model.value_info) | set(external[:1])
    return {b for b in filled if b in declared and b in external}


def data_inputs(model: Caffe2Model, named: Iterable[str] = ()) -> list[str]:
    """The blobs a caller must feed: read by the predict net, filled by no init net op.

    The predict net's ``external_input`` that some op reads (the zoo's nets also list data-queue
    blobs that none does), in that order; for a net that declares none, every blob read before an
    op writes it, in order of first use. Placeholders (``placeholder_inputs``) are inputs.
    """
    net = model.predict_net
    filled: set[str] = set()
    if model.init_net is not None:
        filled = {b for op in model.init_net.op for b in op.output}
        filled -= placeholder_inputs(model, named)
    if net.external_input:
        read = blobs_read(net)
        return [b for b in net.external_input if b not in filled and b in read]
    written: set[str] = set()
    needed: list[str] = []
    for op in net.op:
        needed.extend(
            b for b in op.input if b not in written and b not in filled and b not in needed
        )
        written.update(op.output)
    return needed


# -- writing ------------------------------------------------------------------------------------
def write_model(model: Caffe2Model, directory: Path, *, text: bool = False) -> None:
    """Writes ``model`` into ``directory`` (created if needed) as Caffe2 saves models.

    Args:
        model: the model; an ``init_net`` of None writes no init net file.
        directory: the model directory.
        text: write ``.pbtxt`` protobuf text instead of binary ``.pb``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".pbtxt" if text else ".pb"
    write_netdef(model.predict_net, directory / f"predict_net{suffix}")
    if model.init_net is not None:
        write_netdef(model.init_net, directory / f"init_net{suffix}", model.init_values)
    if model.value_info:
        payload = {name: [elem, list(dims)] for name, (elem, dims) in model.value_info.items()}
        (directory / VALUE_INFO_NAME).write_text(json.dumps(payload) + "\n", encoding="utf-8")


def write_netdef(net: caffe2_pb2.NetDef, path: Path, detached: wire.Detached | None = None) -> None:
    """Writes one NetDef, as protobuf text where ``path`` ends in ``.pbtxt``, else binary.

    Binary nets are written straight to the file, weights the codec still holds as arrays
    (``native/values.py``) and those ``detached`` from the messages as packed fields from those
    arrays.
    """
    path = Path(path)
    if _is_text(path):
        if detached:
            net = attached(net, detached)
        path.write_text(text_format.MessageToString(net), encoding="utf-8")
    else:
        with path.open("wb") as handle:
            wire.write_netdef_stream(net, handle, values.take_for_writing, detached)


def attached(net: caffe2_pb2.NetDef, detached: wire.Detached) -> caffe2_pb2.NetDef:
    """A copy of ``net`` with the lists ``detached`` from it put back into its messages."""
    whole = caffe2_pb2.NetDef()
    whole.CopyFrom(net)
    for index, op in enumerate(whole.op):
        _attach(op, index, detached)
    return whole


def attached_op(
    op: caffe2_pb2.OperatorDef, index: int, detached: wire.Detached
) -> caffe2_pb2.OperatorDef:
    """A copy of op ``index`` of a net with the lists ``detached`` from it put back."""
    whole = caffe2_pb2.OperatorDef()
    whole.CopyFrom(op)
    _attach(whole, index, detached)
    return whole


def _attach(op: caffe2_pb2.OperatorDef, index: int, detached: wire.Detached) -> None:
    for arg_index, arg in enumerate(op.arg):
        if (index, arg_index) in detached:
            field_name, array = detached[index, arg_index]
            (values.set_floats if field_name == "floats" else values.set_ints)(arg, array)


# -- checks -------------------------------------------------------------------------------------
def _reject_foreign_content(data: bytes | bytearray | memoryview, where: str) -> None:
    """Names the common things that sit where a .pb should be: HTML pages, LFS pointers."""
    if not len(data):
        raise BadInputError("the file is empty", path=where, framework=FRAMEWORK)
    start = bytes(data[:4096])
    head = start[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or (
        head.startswith(b"<") and b"<html" in start.lower()
    ):
        raise BadInputError(
            "this is an HTML page, not a Caffe2 NetDef (a web page saved in place of the file?)",
            path=where,
            framework=FRAMEWORK,
            hint="download the raw file",
        )
    if head.startswith(b"version https://git-lfs"):
        raise BadInputError(
            "this is a Git LFS pointer, not a Caffe2 NetDef (the file's content was never fetched)",
            path=where,
            framework=FRAMEWORK,
            hint="run `git lfs pull`",
        )


def _check_netdef(net: caffe2_pb2.NetDef, where: str, *, allow_empty: bool) -> None:
    """Rejects parsed messages that are not plausibly a NetDef."""
    unknown = _unknown_field_numbers(net)
    if unknown:
        raise BadInputError(
            f"not a Caffe2 NetDef: it holds field number(s) {sorted(unknown)} that a NetDef "
            "does not have (a different protobuf message, or corrupt data)",
            path=where,
            framework=FRAMEWORK,
        )
    if not net.op and not allow_empty:
        raise BadInputError(
            "not a usable Caffe2 NetDef: it holds no operators", path=where, framework=FRAMEWORK
        )
    _check_ops(net, where, "")


def _check_ops(net: caffe2_pb2.NetDef, where: str, scope: str) -> None:
    """Op types, blob and argument names, in ``net`` and the subnets its ops hold (If, While)."""
    if not isinstance(net.name, str):  # the wire reader keeps bytes that are not UTF-8 as bytes
        raise BadInputError(
            f"not a Caffe2 NetDef: {scope}the net's name is not UTF-8 text",
            path=where,
            framework=FRAMEWORK,
        )
    for index, op in enumerate(net.op):
        at = f"{scope}operator {index}"
        if not isinstance(op.name, str):
            raise BadInputError(
                f"not a Caffe2 NetDef: {at} has a name that is not UTF-8 text",
                path=where,
                framework=FRAMEWORK,
            )
        if not isinstance(op.type, str) or not op.type or not op.type.isprintable():
            raise BadInputError(
                f"not a Caffe2 NetDef: {at} has {'no' if not op.type else 'a garbled'} type",
                path=where,
                framework=FRAMEWORK,
            )
        for blob in [*op.input, *op.output]:
            if not isinstance(blob, str) or not blob:
                raise BadInputError(
                    f"not a Caffe2 NetDef: {at} ({op.type}) has an empty or garbled blob name",
                    path=where,
                    framework=FRAMEWORK,
                )
        for arg in op.arg:
            if not isinstance(arg.name, str) or not arg.name:
                raise BadInputError(
                    f"not a Caffe2 NetDef: {at} ({op.type}) has an argument without a name",
                    path=where,
                    framework=FRAMEWORK,
                )
            subnets = ([arg.n] if arg.HasField("n") else []) + list(arg.nets)
            for subnet in subnets:
                _check_ops(subnet, where, f"{at} ({op.type}) argument {arg.name!r}: ")


def _unknown_field_numbers(message: Message) -> set[int]:
    """Field numbers the schema does not know, in ``message`` and every message inside it."""
    found = {entry.field_number for entry in UnknownFieldSet(message)}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        # A repeated message field's value is a container, not a Message.
        for item in [value] if isinstance(value, Message) else value:
            found |= _unknown_field_numbers(item)
    return found


def _first_existing(directory: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (directory / name).is_file():
            return directory / name
    return None


def _init_path_for(predict_path: Path) -> Path | None:
    """The init net that belongs to ``predict_path``, or None where there is none."""
    name = predict_path.name
    candidates: list[Path] = []
    if "predict" in name:
        candidates.append(predict_path.with_name(name.replace("predict", "init", 1)))
    candidates.extend(predict_path.parent / init for init in INIT_NAMES)
    for candidate in candidates:
        if candidate.is_file() and candidate != predict_path:
            return candidate
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
