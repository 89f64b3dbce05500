"""Finds framework adapters through the ``unframe.frameworks`` entry-point group.

A third-party package adds a framework by declaring an entry point in that group; unframe itself
registers its adapters the same way (see pyproject.toml). Adapters are imported on first use only.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from pathlib import Path

from unframe.converters.framework import Framework
from unframe.shared_ir.errors import BadInputError, FrameworkNotInstalledError

ENTRY_POINT_GROUP = "unframe.frameworks"
#: The frameworks of the design card, in the order the CLI lists them.
KNOWN_FRAMEWORKS = ("onnx", "pytorch", "caffe2", "tensorflow", "tflite", "coreml")


@functools.cache
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def framework_names() -> list[str]:
    """Every registered framework, the design card's first, then third-party ones by name."""
    names = set(_entry_points())
    return [n for n in KNOWN_FRAMEWORKS if n in names] + sorted(names - set(KNOWN_FRAMEWORKS))


@functools.cache
def get_framework(name: str) -> Framework:
    """The adapter called ``name``; raises BadInputError naming the known ones otherwise."""
    entry = _entry_points().get(name.lower())
    if entry is None:
        known = ", ".join(framework_names())
        planned = [n for n in KNOWN_FRAMEWORKS if n not in _entry_points()]
        hint = f"known: {known}"
        if name.lower() in planned:
            hint += f"; {name} has no adapter yet"
        raise BadInputError(f"unknown framework {name!r}", hint=hint)
    try:
        adapter_class = entry.load()  # type: ignore[attr-defined]
    except ImportError as error:
        raise FrameworkNotInstalledError(
            f"the {name} adapter cannot be loaded ({error})",
            framework=name,
            hint="reinstall unframe, or the package that provides this adapter",
        ) from None
    adapter = adapter_class()
    if not isinstance(adapter, Framework):
        raise TypeError(f"entry point {name!r} does not name a unframe Framework subclass")
    return adapter


def all_frameworks() -> list[Framework]:
    """Every adapter that loads; see ``broken_frameworks`` for those that do not."""
    adapters = []
    for name in framework_names():
        try:
            adapters.append(get_framework(name))
        except FrameworkNotInstalledError:
            continue
    return adapters


def broken_frameworks() -> dict[str, str]:
    """Registered adapters whose module fails to import, with the reason."""
    broken = {}
    for name in framework_names():
        try:
            get_framework(name)
        except FrameworkNotInstalledError as error:
            broken[name] = error.message
    return broken


def detect_framework(path: Path | str, *, for_writing: bool) -> Framework:
    """The framework whose formats match ``path``; raises BadInputError where none or several do."""
    candidate = Path(str(path))
    matches = [fw for fw in all_frameworks() if fw.matches(candidate, for_writing=for_writing)]
    if len(matches) == 1:
        return matches[0]
    flag = "--to" if for_writing else "--from"
    if not matches:
        # A factory spec (``py:...``) matches the PyTorch adapter; any other colon path is a path.
        if not for_writing and not candidate.exists():
            raise BadInputError("no such file", path=str(path))
        _refuse_compiled_coreml(candidate, for_writing=for_writing)
        raise BadInputError(
            "cannot tell which framework this is from its name",
            path=str(path),
            hint=f"pass {flag} with one of {', '.join(framework_names())}",
        )
    names = ", ".join(fw.name for fw in matches)
    raise BadInputError(
        f"could be any of {names}", path=str(path), hint=f"pass {flag} to choose one"
    )


def _refuse_compiled_coreml(path: Path, *, for_writing: bool) -> None:
    """A compiled Core ML model (``.mlmodelc``, as Xcode and coremlcompiler write it) is a folder
    of binaries no framework here reads or writes: say so, rather than that its name is unknown."""
    compiled = path.name.lower().endswith(".mlmodelc") or (
        not for_writing and path.is_dir() and (path / "coremldata.bin").is_file()
    )
    if not compiled:
        return
    if for_writing:
        raise BadInputError(
            "is a compiled Core ML model (.mlmodelc), which unframe does not write",
            path=str(path),
            hint="write an ML Program package (-o model.mlpackage) and compile that with Xcode "
            "or `xcrun coremlcompiler compile`",
        )
    raise BadInputError(
        "is a compiled Core ML model (.mlmodelc), which unframe cannot read",
        path=str(path),
        hint="convert the .mlpackage or .mlmodel it was compiled from",
    )
