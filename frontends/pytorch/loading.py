"""Reading PyTorch models: ``.pt2`` programs, TorchScript archives and Python factories.

No file a user hands us is ever unpickled with ``weights_only=False``: ``.pt2`` archives are checked
for pickled payloads before ``torch.export.load`` reads them, and every ``torch.load`` made while
reading one is forced to ``weights_only=True``. TorchScript archives go through ``torch.jit.load``,
whose unpickler builds TorchScript objects only. A factory runs the user's own code: that is its
contract, and only an explicit factory spec names one (``unframe.shared_ir.factory_spec``).

Only regular files are read (a FIFO would block, ``/dev/zero`` never ends), and a ``.pt2`` archive's
members must fit in the archive and under ``UNFRAME_MAX_PT2_BYTES`` before torch reads any of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import stat
import sys
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np
import onnx_ir as ir
import torch

from unframe.backends.pytorch.native import checked_source_names, pt2_load_faster
from unframe.frontends.pytorch.source_names import restore_source_names
from unframe.frontends.pytorch.torch_onnx import (
    DEFAULT_OPSET,
    forward_parameters,
    from_torch,
    quiet_torch,
)
from unframe.shared_ir.errors import BadInputError, LimitExceededError
from unframe.shared_ir.factory_spec import FactorySpec, is_factory_spec, parse_factory_spec
from unframe.shared_ir.inputs import InputSpec, random_array
from unframe.shared_ir.options import ConvertOptions

PT2_SUFFIXES = (".pt2",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")

__all__ = [
    "PT2_SUFFIXES",
    "TORCHSCRIPT_SUFFIXES",
    "instantiate_factory",
    "is_factory_spec",
    "load_exported_program",
    "load_pytorch",
    "load_torchscript",
]

#: Environment variable that raises the limit on a ``.pt2`` archive's unpacked size.
MAX_PT2_BYTES_VARIABLE = "UNFRAME_MAX_PT2_BYTES"
#: Default limit on the bytes a ``.pt2`` archive unpacks to (all members together): 64 GiB.
DEFAULT_MAX_PT2_BYTES = 64 << 30
#: Deflate cannot expand data more than 1032-fold; a member declaring more lies about its size.
_MAX_DEFLATE_RATIO = 1032
#: Example size of an axis the user leaves symbolic (``--input x=batch,3``): 1 may be specialized.
_SYMBOLIC_EXAMPLE_SIZE = 2
_LOAD_LOCK = threading.Lock()
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def load_pytorch(path_or_spec: Path | str, options: ConvertOptions | None = None) -> ir.Model:
    """Frontend: reads a ``.pt2`` program, a TorchScript file or a factory spec into the IR.

    Args:
        path_or_spec: a ``.pt2`` file (``torch.export.save``), a TorchScript ``.pt``/``.ts`` file
            (``torch.jit.save``), or a factory, which runs the user's code:
            ``py:file.py:make_model`` / ``py:package.module:make_model`` (or an existing
            ``file.py:make_model``).
        options: ``inputs`` give the example inputs' shapes (a factory needs them unless its module
            defines ``example_inputs()``); ``dynamic`` names the axes that stay symbolic.

    Raises:
        BadInputError: the file is missing or unreadable, or the factory fails.
        UnsupportedError: neither exporter can convert the model.
    """
    options = options or ConvertOptions()
    opset = options.opset or DEFAULT_OPSET
    text = str(path_or_spec)
    spec = parse_factory_spec(text)
    if spec is not None:
        module, where, factory_module = _call_factory(spec)
        names = forward_parameters(module)
        inputs = _example_inputs(names, options, where, factory_module)
        return _convert(module, inputs, names, options, opset, where)

    path = Path(text)
    if not path.exists():
        raise BadInputError("no such file", path=text, framework="pytorch")
    if path.is_dir():
        raise BadInputError(
            "is a directory, not a .pt2 or TorchScript file", path=text, framework="pytorch"
        )
    _check_regular_file(path)
    name = path.name.lower()
    if name.endswith(PT2_SUFFIXES):
        program = load_exported_program(path)
        names = forward_parameters(program) or []
        _check_input_names(options, names, text)
        if options.dynamic:
            raise BadInputError(
                "--dynamic does not apply to a .pt2 program: its dynamic axes were fixed when "
                "it was exported",
                path=text,
                framework="pytorch",
                hint="export it again with dynamic_shapes=...",
            )
        model = from_torch(program, opset=opset, path=text)
        restore_source_names(model, checked_source_names(path))
        return model
    if name.endswith(TORCHSCRIPT_SUFFIXES):
        script = load_torchscript(path)
        names = forward_parameters(script)
        inputs = _example_inputs(names, options, text, None)
        return _convert(script, inputs, names, options, opset, text)
    raise BadInputError(
        "not a PyTorch model file",
        path=text,
        framework="pytorch",
        hint="give a .pt2 (torch.export.save), a .pt/.ts (torch.jit.save) or py:file.py:make_model",
    )


def _convert(
    module: Any,
    inputs: dict[str, torch.Tensor],
    names: list[str] | None,
    options: ConvertOptions,
    opset: int,
    where: str,
) -> ir.Model:
    order = list(inputs)
    dynamic = _dynamic_shapes(options, order, inputs, where)
    if names is None or order == names[: len(order)]:
        example: Any = tuple(inputs.values())
    else:
        example = dict(inputs)
    return from_torch(
        module, example, dynamic_shapes=dynamic or None, input_names=order, opset=opset, path=where
    )


# -- .pt2 -------------------------------------------------------------------------------------


def load_exported_program(path: Path) -> torch.export.ExportedProgram:
    """Reads a ``torch.export.save`` archive, refusing any that would need unsafe unpickling.

    Raises:
        BadInputError: not a regular file, a corrupt or foreign archive, or pickled contents.
        LimitExceededError: the archive unpacks to more than ``UNFRAME_MAX_PT2_BYTES``.
    """
    with _open_regular_file(path) as file:
        _check_pt2_archive(file, str(path))
        file.seek(0)
        program = _read_program(file, str(path))
    if not isinstance(program, torch.export.ExportedProgram):
        raise BadInputError(
            "the .pt2 archive holds no exported program", path=str(path), framework="pytorch"
        )
    return program


def _read_program(file: IO[bytes], where: str) -> object:
    try:
        # torch logs its own traceback of a bad archive before raising: the user gets ours.
        with (
            _weights_only_loads(),
            quiet_torch(),
            _logged_load_errors() as logged,
            pt2_load_faster(file),
        ):
            return torch.export.load(file)
    except _UnsafePickle as error:
        raise BadInputError(
            f"loading the .pt2 program needs unpickling arbitrary objects ({error}), "
            "which unframe refuses",
            path=where,
            framework="pytorch",
            hint="export a program whose weights and constants are plain tensors",
        ) from None
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure means a bad file
        # torch.export.load logs the archive reader's error, then fails again on a legacy-format
        # retry with "check the warnings above": the logged error is the one that explains.
        reason = _reason(logged[0] if logged else error)
        raise BadInputError(
            f"loading the .pt2 program failed: {reason}",
            path=where,
            framework="pytorch",
            hint="the file is corrupt, truncated, or from an incompatible torch version",
        ) from None


@contextlib.contextmanager
def _logged_load_errors() -> Iterator[list[BaseException]]:
    """The exceptions ``torch.export.load`` logs, kept, and dropped unless at DEBUG (``--debug``)."""
    logger = logging.getLogger("torch.export")
    shown = logging.getLogger("unframe").isEnabledFor(logging.DEBUG)
    logged: list[BaseException] = []

    def keep(record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            logged.append(record.exc_info[1])
        return shown

    level = logger.level
    logger.addFilter(keep)
    if not shown:
        logger.setLevel(logging.WARNING)  # records must exist to be kept; ``keep`` drops them
    try:
        yield logged
    finally:
        logger.removeFilter(keep)
        logger.setLevel(level)


def _check_regular_file(path: Path) -> None:
    """Refuses FIFOs, devices and sockets before opening them (a FIFO would block the open)."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise BadInputError(
            f"cannot read the file ({error.strerror})", path=str(path), framework="pytorch"
        ) from None
    if not stat.S_ISREG(mode):
        raise BadInputError(
            f"not a regular file ({_file_kind(mode)}); unframe reads models from regular files only",
            path=str(path),
            framework="pytorch",
        )


@contextlib.contextmanager
def _open_regular_file(path: Path) -> Iterator[IO[bytes]]:
    """Opens ``path`` without blocking and checks what was opened is still a regular file."""
    _check_regular_file(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise BadInputError(
            f"cannot open the file ({error.strerror})", path=str(path), framework="pytorch"
        ) from None
    with os.fdopen(descriptor, "rb") as file:
        # The path may have been swapped for a FIFO or device between stat and open.
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise BadInputError(
                f"not a regular file ({_file_kind(mode)})", path=str(path), framework="pytorch"
            )
        yield file


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _check_pt2_archive(file: IO[bytes], where: str) -> None:
    """Checks the archive's directory before torch reads it: sizes, names, pickled payloads."""
    try:
        archive_bytes = os.fstat(file.fileno()).st_size
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            _check_member_sizes(members, archive_bytes, where)
            names = [member.filename for member in members]
            configs = {
                name: archive.read(name)
                for name in names
                if name.endswith(("_weights_config.json", "_constants_config.json"))
            }
    except UnicodeDecodeError:
        raise BadInputError(
            "loading the .pt2 program failed: a member name in the archive is not valid UTF-8",
            path=where,
            framework="pytorch",
            hint="the file is corrupt; make it with torch.export.save",
        ) from None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ) as error:
        raise BadInputError(
            f"loading the .pt2 program failed: not a torch.export archive ({_reason(error)})",
            path=where,
            framework="pytorch",
            hint="the file is corrupt or truncated; make it with torch.export.save",
        ) from None
    if not any(
        name.endswith("/models/model.json") or name == "models/model.json" for name in names
    ):
        raise BadInputError(
            "loading the .pt2 program failed: the archive holds no models/model.json "
            "(an old or foreign .pt2 format)",
            path=where,
            framework="pytorch",
            hint="save it again with torch.export.save from a recent torch",
        )
    unsafe = [name for name in names if "/data/aotinductor/" in f"/{name}"]
    for config_name, raw in configs.items():
        try:
            config = json.loads(raw).get("config", {})
            flagged = [
                fqn
                for fqn, meta in config.items()
                if meta.get("use_pickle")
                or str(meta.get("path_name", "")).startswith(("custom_obj_", "opaque_obj_"))
            ]
        except (ValueError, AttributeError, TypeError) as error:
            raise BadInputError(
                f"loading the .pt2 program failed: {config_name} is unreadable ({_reason(error)})",
                path=where,
                framework="pytorch",
            ) from None
        unsafe.extend(flagged)
    if unsafe:
        shown = ", ".join(unsafe[:5]) + (" ..." if len(unsafe) > 5 else "")
        raise BadInputError(
            f"the .pt2 archive holds pickled objects or compiled code ({shown}); loading it would "
            "unpickle or run them, which unframe refuses",
            path=where,
            framework="pytorch",
            hint="export a program whose weights and constants are plain tensors",
        )


def _check_member_sizes(members: Sequence[zipfile.ZipInfo], archive_bytes: int, where: str) -> None:
    """Each member's declared size must fit in the archive; all of them under the limit."""
    packed = 0
    unpacked = 0
    for member in members:
        if member.compress_type == zipfile.ZIP_STORED:
            honest = member.file_size == member.compress_size
        elif member.compress_type == zipfile.ZIP_DEFLATED:
            honest = member.file_size <= member.compress_size * _MAX_DEFLATE_RATIO
        else:
            raise BadInputError(
                f"loading the .pt2 program failed: member {member.filename!r} uses zip "
                f"compression method {member.compress_type}, which torch.export does not write",
                path=where,
                framework="pytorch",
                hint="make it with torch.export.save",
            )
        packed += member.compress_size
        unpacked += member.file_size
        if not honest:
            raise BadInputError(
                f"loading the .pt2 program failed: member {member.filename!r} declares "
                f"{member.file_size} bytes, more than its {member.compress_size} stored bytes "
                "can hold",
                path=where,
                framework="pytorch",
                hint="the file is corrupt or crafted; make it with torch.export.save",
            )
        if member.header_offset + member.compress_size > archive_bytes:
            raise BadInputError(
                f"loading the .pt2 program failed: member {member.filename!r} ends past the end "
                f"of the {archive_bytes}-byte archive",
                path=where,
                framework="pytorch",
                hint="the file is corrupt or truncated; make it with torch.export.save",
            )
    if packed > archive_bytes:
        raise BadInputError(
            f"loading the .pt2 program failed: its members declare {packed} bytes, more than the "
            f"{archive_bytes}-byte archive holds (overlapping members)",
            path=where,
            framework="pytorch",
            hint="the file is corrupt or crafted; make it with torch.export.save",
        )
    limit = _max_pt2_bytes()
    if unpacked > limit:
        raise LimitExceededError(
            f"the .pt2 archive unpacks to {unpacked} bytes, over the limit of {limit} bytes",
            path=where,
            framework="pytorch",
            hint=f"set {MAX_PT2_BYTES_VARIABLE}=<bytes> to raise the limit",
        )


def _max_pt2_bytes() -> int:
    text = os.environ.get(MAX_PT2_BYTES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PT2_BYTES
    try:
        return int(text)
    except ValueError:
        raise BadInputError(
            f"{MAX_PT2_BYTES_VARIABLE}={text!r} is not a whole number of bytes",
            hint=f"e.g. {MAX_PT2_BYTES_VARIABLE}={DEFAULT_MAX_PT2_BYTES}",
        ) from None


class _UnsafePickle(Exception):
    """A ``torch.load`` asked for ``weights_only=False`` and plain tensors did not suffice."""


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Forces every ``torch.load`` in the block to ``weights_only=True``."""
    real_load = torch.load

    def safe_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        try:
            return real_load(f, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - re-raised as a refusal
            found = _UNSUPPORTED_GLOBAL.search(_ANSI.sub("", str(error)))
            what = f"it references {found[1]}" if found else _reason(error)
            raise _UnsafePickle(what) from None

    with _LOAD_LOCK:
        torch.load = safe_load  # type: ignore[assignment]
        try:
            yield
        finally:
            torch.load = real_load


def _check_input_names(options: ConvertOptions, names: list[str], where: str) -> None:
    """``--input`` on a program only shapes validation data; its names must still be inputs."""
    unknown = [name for name in options.inputs if name not in names]
    if unknown:
        raise BadInputError(
            f"--input names {', '.join(unknown)}, which the program does not take",
            path=where,
            framework="pytorch",
            hint=f"its inputs: {', '.join(names) or 'none'}",
        )


# -- TorchScript ------------------------------------------------------------------------------


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Reads a ``torch.jit.save`` archive (never a pickled ``nn.Module``)."""
    if _is_plain_pickle(path):
        raise BadInputError(
            "loading the TorchScript model failed: this is a torch.save pickle (a whole model or "
            "a state dict), not a TorchScript archive; unframe never unpickles one, since "
            "unpickling can run arbitrary code",
            path=str(path),
            framework="pytorch",
            hint="save it with torch.jit.save or torch.export.save, or give py:file.py:make_model "
            "that builds the model and loads the weights with torch.load(..., weights_only=True)",
        )
    try:
        with quiet_torch():
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - any reader failure means a bad file
        raise BadInputError(
            f"loading the TorchScript model failed: {_reason(error)}",
            path=str(path),
            framework="pytorch",
            hint="save it with torch.jit.save or torch.export.save, or give py:file.py:make_model; "
            "unframe never unpickles a whole model",
        ) from None
    module.eval()
    return module


def _is_plain_pickle(path: Path) -> bool:
    """A ``torch.save`` file: a bare pickle, or a zip with ``data.pkl`` but no TorchScript code."""
    try:
        with path.open("rb") as file:
            head = file.read(2)
        if head[:1] == b"\x80":
            return True
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    has_data = any(name.endswith("/data.pkl") for name in names)
    has_code = any(name.endswith("/constants.pkl") or "/code/" in name for name in names)
    return has_data and not has_code


# -- factories --------------------------------------------------------------------------------


def _call_factory(spec: FactorySpec) -> tuple[torch.nn.Module, str, ModuleType]:
    """Imports the factory's file or module and calls it: the user asked us to run this code."""
    target, function = spec.target, spec.function
    user_module = _import_factory_module(spec)
    where = str(target)
    factory = getattr(user_module, function, None)
    if not callable(factory):
        available = sorted(
            name
            for name, value in vars(user_module).items()
            if callable(value)
            and not name.startswith("_")
            and not isinstance(value, type)
            and getattr(value, "__module__", None) == user_module.__name__
        )
        raise BadInputError(
            f"the factory module defines no function {function!r}",
            path=where,
            framework="pytorch",
            hint=f"functions there: {', '.join(available)}" if available else None,
        )
    try:
        module = factory()
    except Exception as error:  # noqa: BLE001 - the user's code may raise anything
        raise BadInputError(
            f"calling the factory {function}() failed: {_reason(error)}",
            path=where,
            framework="pytorch",
        ) from None
    if not isinstance(module, torch.nn.Module):
        raise BadInputError(
            f"the factory {function}() returned {type(module).__name__}, not a torch.nn.Module",
            path=where,
            framework="pytorch",
        )
    module.eval()
    return module, where, user_module


def _import_factory_module(spec: FactorySpec) -> ModuleType:
    target = spec.target
    if spec.is_file:
        file = Path(target)
        if not file.is_file():
            raise BadInputError("no such factory file", path=target, framework="pytorch")
        resolved = file.resolve()
        digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
        stem = re.sub(r"\W", "_", file.stem)
        module_name = f"_unframe_factory_{stem}_{digest}"
        import_spec = importlib.util.spec_from_file_location(module_name, resolved)
        if import_spec is None or import_spec.loader is None:
            raise BadInputError("cannot import the factory file", path=target, framework="pytorch")
        user_module = importlib.util.module_from_spec(import_spec)
        # Registered so that dataclasses and pickling inside the user's file work.
        sys.modules[module_name] = user_module
        try:
            with _on_sys_path(str(resolved.parent)):
                import_spec.loader.exec_module(user_module)
        except Exception as error:  # noqa: BLE001 - the user's code may raise anything
            sys.modules.pop(module_name, None)
            raise BadInputError(
                f"importing the factory file failed: {_reason(error)}",
                path=target,
                framework="pytorch",
            ) from None
        return user_module
    try:
        with _on_sys_path(str(Path.cwd())):
            return importlib.import_module(target)
    except Exception as error:  # noqa: BLE001 - the user's code may raise anything
        raise BadInputError(
            f"importing the factory module failed: {_reason(error)}",
            path=target,
            framework="pytorch",
        ) from None


@contextlib.contextmanager
def _on_sys_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


# -- example inputs and dynamic axes ----------------------------------------------------------


def _example_inputs(
    names: list[str] | None,
    options: ConvertOptions,
    where: str,
    factory_module: ModuleType | None,
) -> dict[str, torch.Tensor]:
    """Example tensors by input name, from ``--input`` specs or the factory's example_inputs()."""
    if options.inputs:
        if names is not None:
            unknown = [name for name in options.inputs if name not in names]
            if unknown:
                raise BadInputError(
                    f"--input names {', '.join(unknown)}, which forward() does not take",
                    path=where,
                    framework="pytorch",
                    hint=f"forward() takes {', '.join(names) or 'no inputs'}",
                )
            ordered = [options.inputs[name] for name in names if name in options.inputs]
        else:
            ordered = list(options.inputs.values())
        rng = np.random.default_rng(0)
        return {spec.name: _tensor_for(spec, rng, where) for spec in ordered}
    made = getattr(factory_module, "example_inputs", None) if factory_module else None
    if callable(made):
        try:
            value = made()
        except Exception as error:  # noqa: BLE001 - the user's code may raise anything
            raise BadInputError(
                f"calling example_inputs() failed: {_reason(error)}",
                path=where,
                framework="pytorch",
            ) from None
        return _name_inputs(value, names, where)
    raise BadInputError(
        "the model needs example inputs",
        path=where,
        framework="pytorch",
        hint=(
            f"pass --input NAME=DIMS[:DTYPE] for {', '.join(names)}"
            if names
            else "pass --input NAME=DIMS[:DTYPE] for each input"
        )
        + (" or define example_inputs() beside the factory" if factory_module else ""),
    )


def _tensor_for(spec: InputSpec, rng: np.random.Generator, where: str) -> torch.Tensor:
    if spec.shape is None:
        raise BadInputError(
            f"--input {spec.name} gives no shape",
            path=where,
            framework="pytorch",
            hint=f"e.g. --input {spec.name}=1,3,224,224",
        )
    dims = tuple(d if isinstance(d, int) and d >= 0 else _SYMBOLIC_EXAMPLE_SIZE for d in spec.shape)
    dtype = spec.dtype if spec.dtype is not None else np.dtype("float32")
    return torch.from_numpy(np.ascontiguousarray(random_array(rng, dims, dtype)))


def _name_inputs(value: Any, names: list[str] | None, where: str) -> dict[str, torch.Tensor]:
    if isinstance(value, torch.Tensor):
        value = (value,)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence):
        labels = list(names or [])
        labels += [f"input_{i}" for i in range(len(labels), len(value))]
        return dict(zip(labels, value, strict=False))
    raise BadInputError(
        f"example_inputs() returned {type(value).__name__}; expected a tensor, a tuple or a dict",
        path=where,
        framework="pytorch",
    )


def _dynamic_shapes(
    options: ConvertOptions,
    names: Sequence[str],
    inputs: Mapping[str, torch.Tensor],
    where: str,
) -> dict[str, dict[int, str]]:
    """``--dynamic`` axes plus symbolic ``--input`` dims, as ``{name: {axis: dim name}}``."""
    axes: dict[str, dict[int, str]] = {}
    for name, spec in options.inputs.items():
        for axis, dim in enumerate(spec.shape or ()):
            if isinstance(dim, str):
                axes.setdefault(name, {})[axis] = dim
            elif dim is None or (isinstance(dim, int) and dim < 0):
                axes.setdefault(name, {})[axis] = f"{name}_dim{axis}"
    for name, requested in options.dynamic.items():
        if name not in names:
            raise BadInputError(
                f"--dynamic names {name!r}, which is not a model input",
                path=where,
                framework="pytorch",
                hint=f"inputs: {', '.join(names) or 'none'}",
            )
        rank = inputs[name].dim() if name in inputs else None
        for axis in requested:
            if rank is not None and not -rank <= axis < rank:
                raise BadInputError(
                    f"--dynamic {name}={axis}: {name} has {rank} axes",
                    path=where,
                    framework="pytorch",
                )
            positive = axis % rank if rank is not None else axis
            axes.setdefault(name, {}).setdefault(positive, f"{name}_dim{positive}")
    return axes


def _reason(error: BaseException) -> str:
    """``Type: first line`` of an error, without terminal colours."""
    text = _ANSI.sub("", str(error)).strip()
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def instantiate_factory(spec: str) -> torch.nn.Module:
    """The module a ``py:file.py:make_model`` factory returns, for running the source side itself.

    Raises:
        BadInputError: ``spec`` names no factory, or the factory fails.
    """
    parsed = parse_factory_spec(spec)
    if parsed is None:
        raise BadInputError(
            "not a factory spec", path=spec, framework="pytorch", hint="py:file.py:FUNCTION"
        )
    module, _, _ = _call_factory(parsed)
    return module
