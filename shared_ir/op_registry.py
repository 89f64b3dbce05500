"""One registry object per conversion direction, keyed by (domain, op type, since_version).

Converters are registered at the ``since_version`` of the ONNX schema they were written for; lookup
rounds the model's opset down to the schema's ``since_version`` (as ``onnx.defs`` defines it), then
takes the newest converter registered at or below it. A converter may bound the schema versions it
handles with ``until`` so that an op whose semantics changed later is reported, never guessed.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import onnx.defs
import onnx_ir as ir

from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.traversal import iter_nodes

F = TypeVar("F", bound=Callable[..., object])


@dataclass
class _Entry(Generic[F]):
    since: int
    until: int | None
    function: F


@dataclass
class OpRegistry(Generic[F]):
    """Converters for one framework and one direction ("export" or "import").

    Example::

        ops = OpRegistry[Converter]("pytorch", "export")

        @ops.register("Squeeze", since=13)
        def squeeze_v13(node, ctx): ...
    """

    framework: str
    direction: str
    _entries: dict[tuple[str, str], list[_Entry[F]]] = field(default_factory=dict)

    def register(
        self, op_type: str, *, since: int, until: int | None = None, domain: str = ""
    ) -> Callable[[F], F]:
        """Registers a converter for ``op_type`` from schema version ``since`` (to ``until``)."""

        def decorate(function: F) -> F:
            entries = self._entries.setdefault((_normal_domain(domain), op_type), [])
            if any(entry.since == since for entry in entries):
                raise ValueError(
                    f"{self.framework} {self.direction}: {domain or 'ai.onnx'}::{op_type} "
                    f"since {since} is registered twice"
                )
            bisect.insort(entries, _Entry(since, until, function), key=lambda e: e.since)
            return function

        return decorate

    def lookup(self, op_type: str, opset: int, domain: str = "") -> F | None:
        """The converter for ``op_type`` in a model importing ``domain`` at ``opset``."""
        entries = self._entries.get((_normal_domain(domain), op_type))
        if not entries:
            return None
        version = schema_since_version(op_type, opset, domain)
        candidates = [entry for entry in entries if entry.since <= version]
        if not candidates:
            return None
        entry = candidates[-1]
        if entry.until is not None and version > entry.until:
            return None
        return entry.function

    def op_types(self, domain: str = "") -> list[str]:
        """Every op type that has at least one converter in ``domain``."""
        wanted = _normal_domain(domain)
        return sorted(op for (dom, op) in self._entries if dom == wanted)

    def supports(self, op_type: str, opset: int, domain: str = "") -> bool:
        return self.lookup(op_type, opset, domain) is not None

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        """Every node (subgraphs included) that has no converter, in graph order."""
        missing = []
        for node in iter_nodes(model.graph):
            domain = _normal_domain(node.domain)
            opset = model.opset_imports.get(domain, model.opset_imports.get("ai.onnx"))
            if opset is None and domain == "":
                opset = model.opset_imports.get("")
            if opset is None or self.lookup(node.op_type, opset, domain) is None:
                missing.append(
                    UnsupportedOp(
                        node=node.name or "",
                        op_type=node.op_type,
                        domain=domain,
                        opset=opset,
                        reason=f"no {self.framework} {self.direction} converter",
                    )
                )
        return missing


def _normal_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


@functools.lru_cache(maxsize=4096)
def schema_since_version(op_type: str, opset: int, domain: str = "") -> int:
    """The ``since_version`` of the schema that ``op_type`` has at ``opset``.

    For ops that ``onnx.defs`` does not know (custom domains) the opset itself is the version.
    """
    try:
        return int(onnx.defs.get_schema(op_type, opset, _normal_domain(domain)).since_version)
    except onnx.defs.SchemaError:
        return opset


def load_op_modules(package_name: str) -> list[str]:
    """Imports every public module of the package ``package_name`` (so that its ops register).

    Op modules are found by ``pkgutil``, in name order, so that adding an op family is adding a
    file; modules whose name starts with ``_`` (shared helpers) are imported by those that use them.

    Returns:
        The names of the modules imported.
    """
    package = importlib.import_module(package_name)
    names = []
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")
            names.append(module.name)
    return names
