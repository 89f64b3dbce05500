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
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

# The modules onnx_ir imports at its top but needs only for symbolic-dimension arithmetic.
DEFERRED_BY_ONNX_IR = ("sympy", "onnx_ir._symbolic_shapes")


class _DeferredModule(types.ModuleType):
    """Stands in for module ``__name__`` where onnx_ir imported it; imports it on the first read.

    Its ``__spec__`` is None (``types.ModuleType``'s), so an ``import`` of it while it sits in
    ``sys.modules`` returns it without reading anything else.
    """

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the stand-in lacks: everything but the few a module starts with.
        if sys.modules.get(self.__name__) is self:  # read while onnx_ir is still importing
            del sys.modules[self.__name__]
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
    if "sympy" in sys.modules:  # imported by now (torch): onnx_ir shares it as it would
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
