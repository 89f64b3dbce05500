"""Reading PyTorch models: ``.pt2`` programs, TorchScript archives and Python factories.

No file a user hands us is ever unpickled with ``weights_only=False``: ``.pt2`` archives are checked
for pickled payloads before ``torch.export.load`` reads them, and every ``torch.load`` made while
reading one is forced to ``weights_only=True``. TorchScript archives go through ``torch.jit.load``,
whose unpickler builds TorchScript objects only. A factory runs the user's own code: that is its
contract.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import re
import sys
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx_ir as ir
import torch

from unframe.frontends.pytorch.export import DEFAULT_OPSET, forward_parameters, from_torch
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.inputs import InputSpec, random_array
from unframe.shared_ir.options import ConvertOptions

PT2_SUFFIXES = (".pt2",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")

_FACTORY = re.compile(r"^(?P<target>.+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: Example size of an axis the user leaves symbolic (``--input x=batch,3``): 1 may be specialized.
_SYMBOLIC_EXAMPLE_SIZE = 2
_LOAD_LOCK = threading.Lock()
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_factory_spec(text: str | Path) -> bool:
    """Whether ``text`` reads ``path/to/file.py:make_model`` or ``package.module:make_model``."""
    match = _FACTORY.match(str(text))
    if not match:
        return False
    target = match["target"]
    return target.endswith(".py") or bool(_DOTTED.match(target))


def load_pytorch(path_or_spec: Path | str, options: ConvertOptions | None = None) -> ir.Model:
    """Frontend: reads a ``.pt2`` program, a TorchScript file or a factory spec into the IR.

    Args:
        path_or_spec: a ``.pt2`` file (``torch.export.save``), a TorchScript ``.pt``/``.ts`` file
            (``torch.jit.save``), or ``file.py:make_model`` / ``package.module:make_model``.
        options: ``inputs`` give the example inputs' shapes (a factory needs them unless its module
            defines ``example_inputs()``); ``dynamic`` names the axes that stay symbolic.

    Raises:
        BadInputError: the file is missing or unreadable, or the factory fails.
        UnsupportedError: neither exporter can convert the model.
    """
    options = options or ConvertOptions()
    opset = options.opset or DEFAULT_OPSET
    text = str(path_or_spec)
    if is_factory_spec(text) and not Path(text).exists():
        module, where, factory_module = _call_factory(text)
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
        return from_torch(program, opset=opset, path=text)
    if name.endswith(TORCHSCRIPT_SUFFIXES):
        script = load_torchscript(path)
        names = forward_parameters(script)
        inputs = _example_inputs(names, options, text, None)
        return _convert(script, inputs, names, options, opset, text)
    raise BadInputError(
        "not a PyTorch model file",
        path=text,
        framework="pytorch",
        hint="give a .pt2 (torch.export.save), a .pt/.ts (torch.jit.save) or file.py:make_model",
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
    """Reads a ``torch.export.save`` archive, refusing any that would need unsafe unpickling."""
    _check_pt2_archive(path)
    try:
        with _weights_only_loads():
            program = torch.export.load(path)
    except _UnsafePickle as error:
        raise BadInputError(
            f"loading the .pt2 program needs unpickling arbitrary objects ({error}), "
            "which unframe refuses",
            path=str(path),
            framework="pytorch",
            hint="export a program whose weights and constants are plain tensors",
        ) from None
    except Exception as error:  # noqa: BLE001 - any reader failure means a bad file
        raise BadInputError(
            f"loading the .pt2 program failed: {_reason(error)}",
            path=str(path),
            framework="pytorch",
            hint="the file is corrupt, truncated, or from an incompatible torch version",
        ) from None
    if not isinstance(program, torch.export.ExportedProgram):
        raise BadInputError(
            "the .pt2 archive holds no exported program", path=str(path), framework="pytorch"
        )
    return program


def _check_pt2_archive(path: Path) -> None:
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            configs = {
                name: archive.read(name)
                for name in names
                if name.endswith(("_weights_config.json", "_constants_config.json"))
            }
    except (zipfile.BadZipFile, OSError, EOFError) as error:
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
        except (ValueError, AttributeError) as error:
            raise BadInputError(
                f"loading the .pt2 program failed: {config_name} is unreadable ({error})",
                path=where,
                framework="pytorch",
            ) from None
        for fqn, meta in config.items():
            path_name = str(meta.get("path_name", ""))
            if meta.get("use_pickle") or path_name.startswith(("custom_obj_", "opaque_obj_")):
                unsafe.append(fqn)
    if unsafe:
        shown = ", ".join(unsafe[:5]) + (" ..." if len(unsafe) > 5 else "")
        raise BadInputError(
            f"the .pt2 archive holds pickled objects or compiled code ({shown}); loading it would "
            "unpickle or run them, which unframe refuses",
            path=where,
            framework="pytorch",
            hint="export a program whose weights and constants are plain tensors",
        )


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
            hint="save it with torch.jit.save or torch.export.save, or give file.py:make_model "
            "that builds the model and loads the weights with torch.load(..., weights_only=True)",
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - any reader failure means a bad file
        raise BadInputError(
            f"loading the TorchScript model failed: {_reason(error)}",
            path=str(path),
            framework="pytorch",
            hint="save it with torch.jit.save or torch.export.save, or give file.py:make_model; "
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


def _call_factory(spec: str) -> tuple[torch.nn.Module, str, ModuleType]:
    match = _FACTORY.match(spec)
    assert match is not None  # checked by is_factory_spec
    target, function = match["target"], match["function"]
    user_module = _import_factory_module(target)
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


def _import_factory_module(target: str) -> ModuleType:
    if target.endswith(".py"):
        file = Path(target)
        if not file.is_file():
            raise BadInputError("no such factory file", path=target, framework="pytorch")
        resolved = file.resolve()
        digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
        stem = re.sub(r"\W", "_", file.stem)
        module_name = f"_unframe_factory_{stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            raise BadInputError("cannot import the factory file", path=target, framework="pytorch")
        user_module = importlib.util.module_from_spec(spec)
        # Registered so that dataclasses and pickling inside the user's file work.
        sys.modules[module_name] = user_module
        try:
            with _on_sys_path(str(resolved.parent)):
                spec.loader.exec_module(user_module)
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
    """The module a ``file.py:make_model`` factory returns, for running the source side itself."""
    module, _, _ = _call_factory(spec)
    return module
