"""The one conversion loop every op-by-op backend and frontend runs, and the converter contract.

A conversion walks a graph's nodes (ONNX nodes for a backend, native ops for an op-by-op frontend)
in order and hands each to the converter registered for it. The loop is the same everywhere:

1. ``scan`` every node first and report all those without a converter at once, before anything is
   converted (no dry run of the whole conversion);
2. convert node by node in order; a node whose inputs come from a node that failed is skipped (its
   failure would only repeat the first one);
3. a converter that refuses a node (an ``UnsupportedError``) is recorded with the node's name, op
   type, domain and opset, and the loop goes on, so one run lists every refusal;
4. a converter that raises anything else has a bug: the loop wraps it in an ``InternalError`` that
   names the node, so the user is never told their model is at fault;
5. everything collected is raised once at the end.

Bad input (``BadInputError``: a file that contradicts itself) stops the loop at once: later nodes
would only report consequences of it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import onnx
import onnx_ir as ir

from unframe.shared_ir.errors import (
    BadInputError,
    InternalError,
    UnframeError,
    UnsupportedError,
    UnsupportedOp,
    UnsupportedOpsError,
    unexpected_error,
)

N = TypeVar("N")
V = TypeVar("V", covariant=True)


@dataclass(frozen=True)
class NodeInfo:
    """Where a node is, for messages: its name, op type, domain and the opset it is read at."""

    name: str
    op_type: str
    domain: str = ""
    opset: int | None = None


#: Marks an attribute with no default of its own: the op schema's default applies, or it is required.
SCHEMA_DEFAULT: Any = object()


class ConverterContext(Protocol[V]):
    """What every converter may ask of its context, with the same words in every framework.

    ``V`` is the target's value type (an fx node, a blob name, an ``ir.Value``). Contexts add
    framework-specific helpers beside these, but these five are named and behave alike everywhere.
    """

    def input(self, index: int) -> V:
        """The converted value of the node's input ``index`` (a located error if it is absent)."""
        ...

    def has_input(self, index: int) -> bool:
        """Whether input ``index`` is present (optional inputs may be missing or empty)."""
        ...

    def constant_input(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` where it is known before run time, else None."""
        ...

    def make_constant(self, array: np.ndarray, hint: str = "const") -> V:
        """A new constant value holding ``array`` in the target."""
        ...

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Attribute ``name``, or ``default`` (the schema's default where none is given)."""
        ...

    def error(self, message: str) -> UnframeError:
        """An error located at the node being converted, for the converter to raise."""
        ...


@dataclass
class ConversionLoop(Generic[N]):
    """Runs converters over nodes of type ``N`` as the module docstring says.

    Args:
        framework: the framework converted to (backend) or from (frontend), for messages.
        direction: ``"export"`` or ``"import"``.
        describe: where a node is (name, op type, domain, opset).
        reads: the keys of the values a node reads (values, blob names), to skip dependents.
        writes: the keys of the values a node writes.
        path: the file being converted, where there is one.
    """

    framework: str
    direction: str
    describe: Callable[[N], NodeInfo]
    reads: Callable[[N], Iterable[Hashable]] = lambda _node: ()
    writes: Callable[[N], Iterable[Hashable]] = lambda _node: ()
    path: str | None = None

    def scan(self, nodes: Iterable[N], has_converter: Callable[[N], bool]) -> list[UnsupportedOp]:
        """Every node without a converter, in order (before anything is converted)."""
        missing = []
        for node in nodes:
            if not has_converter(node):
                info = self.describe(node)
                missing.append(
                    UnsupportedOp(
                        info.name,
                        info.op_type,
                        info.domain,
                        info.opset,
                        f"no {self.framework} {self.direction} converter",
                    )
                )
        return missing

    def check_supported(self, nodes: Iterable[N], has_converter: Callable[[N], bool]) -> None:
        """Raises one ``UnsupportedOpsError`` listing every node without a converter."""
        missing = self.scan(nodes, has_converter)
        if missing:
            raise self.unsupported(missing)

    def run(self, nodes: Iterable[N], convert: Callable[[N], object]) -> list[UnsupportedOp]:
        """Converts ``nodes`` in order; returns the refusals (raise them with ``finish``)."""
        failures: list[UnsupportedOp] = []
        failed_keys: set[Hashable] = set()
        for node in nodes:
            if failed_keys and any(key in failed_keys for key in self.reads(node)):
                failed_keys.update(self.writes(node))
                continue
            try:
                convert(node)
            except UnsupportedOpsError as error:  # a subgraph's own loop, already located
                failures.extend(error.ops)
            except UnsupportedError as error:
                failures.append(self._refusal(node, error))
            except (BadInputError, InternalError):
                raise
            except UnframeError as error:
                # Another deliberate error (not installed, resources): located, then raised.
                _locate(error, self.describe(node), self.framework)
                raise
            except Exception as error:
                raise self._internal(node, error) from error
            else:
                continue
            failed_keys.update(self.writes(node))
        return failures

    def finish(self, failures: Sequence[UnsupportedOp]) -> None:
        """Raises every collected refusal at once, if there are any."""
        if failures:
            raise self.unsupported(failures)

    def convert(self, nodes: Sequence[N], convert: Callable[[N], object]) -> None:
        """``run`` then ``finish``: convert everything, raise every refusal once."""
        self.finish(self.run(nodes, convert))

    def unsupported(self, ops: Sequence[UnsupportedOp]) -> UnsupportedOpsError:
        return UnsupportedOpsError(
            ops, framework=self.framework, direction=self.direction, path=self.path
        )

    def _refusal(self, node: N, error: UnsupportedError) -> UnsupportedOp:
        info = self.describe(node)
        return UnsupportedOp(
            info.name, info.op_type, info.domain, info.opset, error.message or type(error).__name__
        )

    def _internal(self, node: N, error: Exception) -> UnframeError:
        """A bug as a located ``InternalError``; out of memory or disk as a ``ResourceError``."""
        info = self.describe(node)
        return unexpected_error(
            error,
            f"the {self.framework} {self.direction} converter",
            path=self.path,
            framework=self.framework,
            node=info.name,
            op_type=info.op_type,
            domain=info.domain or None,
            opset=info.opset,
        )


def _locate(error: UnframeError, info: NodeInfo, framework: str) -> None:
    """Fills in the node's location where the error does not carry one yet."""
    if error.node is None and not error.op_type:
        error.node = info.name
        error.op_type = info.op_type
        error.domain = info.domain or None
        error.opset = info.opset
    if error.framework is None:
        error.framework = framework


# -- ONNX nodes ------------------------------------------------------------------------------------


def schema_default(node: ir.Node, opset: int, name: str) -> Any:
    """The default the op's schema gives attribute ``name`` at ``opset``, or None (required, or
    an op onnx does not know)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain or "")
    except onnx.defs.SchemaError:
        return None
    attribute = schema.attributes.get(name)
    if attribute is None or not attribute.default_value.name:
        return None
    value = onnx.helper.get_attribute_value(attribute.default_value)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def make_attribute(name: str, value: Any) -> ir.Attr:
    """An ``ir.Attr`` of a plain Python value, as op-by-op frontends' converters pass them.

    Common types are typed directly: ``ir.convenience.convert_attribute`` infers types through
    isinstance checks against protocols, which took a third of a ResNet-50 import.
    """
    if isinstance(value, bool | int | np.integer):
        return ir.AttrInt64(name, int(value))
    if isinstance(value, float | np.floating):
        return ir.AttrFloat32(name, float(value))
    if isinstance(value, str):
        return ir.AttrString(name, value)
    if isinstance(value, list | tuple) and value:
        if all(isinstance(v, bool | int | np.integer) for v in value):
            return ir.AttrInt64s(name, [int(v) for v in value])
        if all(isinstance(v, float | int | np.number) for v in value):
            return ir.AttrFloat32s(name, [float(v) for v in value])
        if all(isinstance(v, str) for v in value):
            return ir.AttrStrings(name, list(value))
    return ir.convenience.convert_attribute(name, value)


def onnx_loop(
    framework: str,
    direction: str,
    opset_imports: dict[str, int],
    *,
    path: str | None = None,
) -> ConversionLoop[Any]:
    """The loop over ``ir.Node``s of a model importing ``opset_imports`` (backends' case)."""
    return ConversionLoop(
        framework=framework,
        direction=direction,
        describe=lambda node: onnx_node_info(node, opset_imports),
        reads=lambda node: [value for value in node.inputs if value is not None],
        writes=lambda node: list(node.outputs),
        path=path,
    )


def node_opset(domain: str, opset_imports: dict[str, int]) -> int | None:
    """The opset a node of ``domain`` is read at, by the model's imports."""
    if domain in ("", "ai.onnx"):
        found = opset_imports.get("", opset_imports.get("ai.onnx"))
    else:
        found = opset_imports.get(domain)
    return None if found is None else int(found)


def onnx_node_info(node: Any, opset_imports: dict[str, int]) -> NodeInfo:
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    return NodeInfo(node.name or "", node.op_type, domain, node_opset(domain, opset_imports))
