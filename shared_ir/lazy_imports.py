"""Importing ``onnx_ir`` without importing sympy until a symbolic dimension does arithmetic.

onnx_ir (1.1) imports sympy at the top of ``_core`` and ``_symbolic_shapes``, though it uses it
only when a ``SymbolicDim`` is parsed into an expression (``+``, ``evaluate``, ``simplify``, ...)
or built from a sympy expression. sympy is about a third of a second of every conversion's
start-up, and most conversions never touch it (issue #15, "no fixed tax"). The fix belongs in
onnx_ir (a lazy import); until then :func:`defer_sympy_in_onnx_ir` arranges it from outside.

``importlib.util.LazyLoader`` cannot do it on Python 3.11: ``import sympy`` of a module already in
``sys.modules`` reads its ``__spec__``, which loads a lazy module there and then. So while onnx_ir
itself executes, and only then, ``sys.modules`` holds a :class:`_DeferredModule` for ``sympy`` and
for ``onnx_ir._symbolic_shapes`` (whose module body reads ``sympy.Max``); onnx_ir's modules keep
that object, and its first attribute read imports the real module through the ordinary import
system and answers from it. The stand-ins leave ``sys.modules`` as soon as onnx_ir is imported, so
whoever imports sympy afterwards (torch does) gets the one real sympy, and onnx_ir's
``isinstance(value, sympy.Expr)`` sees the same classes.

Nothing is deferred where sympy or onnx_ir is already imported when unframe is: behaviour is then
exactly onnx_ir's own. This relies on onnx_ir importing no submodule of sympy while it executes
(``import sympy.x`` through a stand-in would load that submodule twice); were a new onnx_ir to do
so, sympy would be imported with it, and ``tests/shared_ir/test_lazy_imports.py`` says so.

onnxscript's optimizer (the rewrite rules and the constant folder) runs on every conversion, but
``import onnxscript`` executes a package ``__init__`` that imports the script compiler and every
opset module, and the constant folder imports ``onnx.reference.ops`` (every reference kernel) at
its top though it uses it only to fold an op with no folding of its own: together about 0.07 s of
the 0.09 s onnxscript costs. Within :func:`onnxscript_optimizer`, the two subpackages are imported
and used with ``onnxscript`` in ``sys.modules`` as a :class:`_PartialPackage` (its ``__init__``
never run) and ``onnx.reference`` deferred as sympy is above (until the folder first reads it).
Outside, ``sys.modules`` holds nothing of onnxscript's, so that an ``import onnxscript`` elsewhere
is the whole, ordinary one: running the package ``__init__`` later, under submodules already
imported, changes the order its modules import each other in (torch.onnx's import then failed).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

# The modules onnx_ir imports at its top but needs only for symbolic-dimension arithmetic.
DEFERRED_BY_ONNX_IR = ("sympy", "onnx_ir._symbolic_shapes")
# What unframe uses of onnxscript: its rewrite rules and its optimizer's passes.
ONNXSCRIPT_OPTIMIZER = ("onnxscript.rewriter", "onnxscript.optimizer")
# Imported by onnxscript's constant folder at its top, read only to fold an op by onnx's kernel.
DEFERRED_BY_ONNXSCRIPT = ("onnx.reference", "onnx.reference.ops")


class _DeferredModule(types.ModuleType):
    """Stands in for module ``__name__`` where onnx_ir imported it; imports it on the first read.

    Its ``__spec__`` is None (``types.ModuleType``'s), so an ``import`` of it while it sits in
    ``sys.modules`` returns it without reading anything else.
    """

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the stand-in lacks: everything but the few a module starts with.
        top = self.__name__.partition(".")[0]
        for other in list(sys.modules):  # read while still importing: the real modules from here
            if (other == top or other.startswith(top + ".")) and is_deferred(sys.modules[other]):
                del sys.modules[other]
        return getattr(importlib.import_module(self.__name__), name)


def is_deferred(module: object) -> bool:
    """Whether ``module`` is one of the stand-ins (it stays one, forwarding every read)."""
    return isinstance(module, _DeferredModule)


class _DeferringLoader:
    """onnx_ir's own loader, executing the package with the stand-ins in ``sys.modules``."""

    def __init__(self, loader: Loader, finder: _OnnxIrFinder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        # onnx_ir's module and spec name its own loader from here on, as if this one never was.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _uninstall(self._finder)
        stand_ins = _place_stand_ins(DEFERRED_BY_ONNX_IR)
        try:
            self._loader.exec_module(module)
        finally:
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
        for name, stand_in in stand_ins.items():
            parent, _, child = name.rpartition(".")
            # The attribute a real submodule import sets on its package, until the real one does.
            if parent == module.__name__ and not hasattr(module, child):
                setattr(module, child, stand_in)


class _OnnxIrFinder:
    """Finds ``onnx_ir`` as the other finders do, and gives it a :class:`_DeferringLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "onnx_ir":
            return None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and "sympy" not in sys.modules:
            spec.loader = _DeferringLoader(spec.loader, self)  # type: ignore[assignment]
        return spec


def _place_stand_ins(names: Sequence[str]) -> dict[str, _DeferredModule]:
    if any(name in sys.modules for name in names):  # imported by now: shared as it would be
        return {}
    placed: dict[str, _DeferredModule] = {}
    for name in names:
        if name not in sys.modules:
            placed[name] = _DeferredModule(name)
            sys.modules[name] = placed[name]
    return placed


def _uninstall(finder: _OnnxIrFinder) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)


def defer_sympy_in_onnx_ir() -> None:
    """Makes onnx_ir's coming import leave sympy unimported until onnx_ir reads it.

    Called once, by ``unframe/__init__.py``: every module of unframe is imported after it, so this
    runs before any of them imports onnx_ir, whichever comes first. Does nothing where onnx_ir or
    sympy is imported already.
    """
    if "onnx_ir" in sys.modules or "sympy" in sys.modules:
        return
    if not any(isinstance(finder, _OnnxIrFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OnnxIrFinder())


class _PartialPackage(types.ModuleType):
    """A package some of whose submodules are imported, its own ``__init__`` never executed.

    It sits in ``sys.modules`` only inside :func:`partially_imported`; a name it lacks is missing,
    as in a package still importing, so ``from onnxscript import ir`` imports the submodule.
    """


def is_partial(module: object) -> bool:
    """Whether ``module`` is a package whose ``__init__`` has not run."""
    return isinstance(module, _PartialPackage)


_PARTIAL_LOCK = threading.RLock()
#: Per package: the modules of its partial import, kept out of ``sys.modules`` between blocks.
_SHELVED: dict[str, dict[str, types.ModuleType]] = {}
_DEPTH: dict[str, int] = {}


@contextlib.contextmanager
def onnxscript_optimizer() -> Iterator[None]:
    """Within the block, onnxscript's rewrite rules and optimizer import and run without the rest.

    Issue #15: the rest (the script compiler, every opset module, onnx's reference kernels) is
    most of onnxscript's import time, and a conversion needs none of it.
    """
    with partially_imported("onnxscript", ONNXSCRIPT_OPTIMIZER, DEFERRED_BY_ONNXSCRIPT):
        yield


@contextlib.contextmanager
def partially_imported(
    package_name: str, submodules: Sequence[str], deferred: Sequence[str] = ()
) -> Iterator[None]:
    """Within the block, ``submodules`` of ``package_name`` are imported, its ``__init__`` not run.

    The package is a :class:`_PartialPackage` in ``sys.modules`` for the length of the block
    only: before and after it, ``sys.modules`` holds none of the package's modules, so whoever
    imports the package outside (torch.onnx imports onnxscript) gets the whole of it, by an
    ordinary import of its own. The partial modules are kept aside for the next block; objects
    made in a block stay in it (a rule object, a pass). Modules in ``deferred`` (absolute names,
    parents before children) are stand-ins while the submodules first execute and stay attributes
    of their parents until first read (:class:`_DeferredModule`).

    Where the package is imported already (in full), cannot be found, or fails to import
    partially (a newer version whose submodules read what its ``__init__`` sets), the submodules
    are imported the ordinary way, and any error left is the package's own. Blocks nest; one
    thread at a time should run them (another thread's ``import`` of the package meanwhile would
    get the partial one).
    """
    with _PARTIAL_LOCK:
        depth = _DEPTH.get(package_name, 0)
        if depth == 0 and not _enter_partial(package_name, submodules, deferred):
            for name in submodules:
                importlib.import_module(name)
            yield
            return
        _DEPTH[package_name] = depth + 1
        try:
            yield
        finally:
            _DEPTH[package_name] = depth
            if depth == 0:
                _shelve(package_name)


def _enter_partial(package_name: str, submodules: Sequence[str], deferred: Sequence[str]) -> bool:
    """Puts the package's partial modules in ``sys.modules``; False where it is imported in full."""
    if package_name in sys.modules:
        _SHELVED.pop(package_name, None)  # imported in full by now: the shelved copy is not used
        return is_partial(sys.modules[package_name])
    shelved = _SHELVED.get(package_name)
    if shelved is not None:
        sys.modules.update(shelved)
        return True
    spec = importlib.util.find_spec(package_name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    package = importlib.util.module_from_spec(spec)
    package.__class__ = _PartialPackage
    sys.modules[package_name] = package
    stand_ins = _place_stand_ins(deferred)
    attached = _attach_to_parents(stand_ins)
    try:
        for name in submodules:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a newer version may need its __init__: import it all
        _drop(package_name)
        for parent, child, stand_in in attached:
            if parent.__dict__.get(child) is stand_in:
                delattr(parent, child)
        return False
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    return True


def _own_modules(package_name: str) -> list[str]:
    return [
        name for name in sys.modules if name == package_name or name.startswith(package_name + ".")
    ]


def _shelve(package_name: str) -> None:
    if not is_partial(sys.modules.get(package_name)):
        return  # imported in full within the block: nothing of the partial import is left
    _SHELVED[package_name] = {name: sys.modules[name] for name in _own_modules(package_name)}
    _drop(package_name)


def _drop(package_name: str) -> None:
    for name in _own_modules(package_name):
        del sys.modules[name]


def _attach_to_parents(
    stand_ins: dict[str, _DeferredModule],
) -> list[tuple[types.ModuleType, str, _DeferredModule]]:
    """Sets each stand-in on its package, as the import of the real module would have."""
    attached = []
    for name, stand_in in stand_ins.items():
        parent_name, _, child = name.rpartition(".")
        if not parent_name:
            continue
        parent = stand_ins.get(parent_name) or importlib.import_module(parent_name)
        if child not in vars(parent):  # no getattr: a stand-in's would import the real module
            setattr(parent, child, stand_in)
            attached.append((parent, child, stand_in))
    return attached
