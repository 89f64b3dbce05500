"""The one error family of unframe, each member carrying its documented CLI exit code.

Every error names where it happened (file, framework, node, op type, domain, opset) so that the CLI
can print one clear line without a traceback.
"""

from __future__ import annotations

import enum
import errno
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class ExitCode(enum.IntEnum):
    """Exit codes of the ``unframe`` command, documented in the README."""

    OK = 0
    MISMATCH = 1
    BAD_INPUT = 2
    UNSUPPORTED = 3
    NOT_INSTALLED = 4
    #: A bug inside unframe, not the user's model: the message says so and how to report it.
    INTERNAL = 5
    #: The machine ran out of something (memory, disk, address space): not the model's fault.
    RESOURCES = 6


class UnframeError(Exception):
    """Base of every error unframe raises on purpose."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        framework: str | None = None,
        node: str | None = None,
        op_type: str | None = None,
        domain: str | None = None,
        opset: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.framework = framework
        self.node = node
        self.op_type = op_type
        self.domain = domain
        self.opset = opset
        self.hint = hint

    def location(self) -> str:
        parts: list[str] = []
        if self.path:
            parts.append(str(self.path))
        if self.node is not None or self.op_type:
            op = self.op_type or "?"
            if self.domain:
                op = f"{self.domain}::{op}"
            if self.opset is not None:
                op = f"{op}, opset {self.opset}"
            parts.append(f"node {self.node!r} ({op})" if self.node is not None else op)
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class BadInputError(UnframeError):
    """The user handed us something we cannot read or an option that makes no sense (exit 2)."""

    exit_code = ExitCode.BAD_INPUT


class UnsupportedError(UnframeError):
    """A valid model uses an op or feature that a framework cannot express (exit 3)."""

    exit_code = ExitCode.UNSUPPORTED


class ConversionError(UnsupportedError):
    """A converter failed on one node; carries the node so the message says where."""


class FrameworkNotInstalledError(UnframeError):
    """A framework's optional dependencies are missing (exit 4)."""

    exit_code = ExitCode.NOT_INSTALLED


class LimitExceededError(BadInputError):
    """An input declares more than a safety limit allows (a tensor's size, a graph's depth).

    Raised before anything is allocated; the hint says how to raise the limit (exit 2).
    """


#: The tail of every internal error's one line: whose fault it is and what to do.
INTERNAL_HINT = "this is a bug in unframe, not in your model; rerun with --debug for the traceback and report it"


class InternalError(UnframeError):
    """A bug inside unframe (a converter raised something unexpected), exit 5.

    The user's model is not at fault; the message says so and how to get the traceback.
    """

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, **location: Any) -> None:
        location.setdefault("hint", INTERNAL_HINT)
        super().__init__(message, **location)


class ResourceError(UnframeError):
    """The machine ran out of memory, disk or address space (exit 6); nothing partial is left."""

    exit_code = ExitCode.RESOURCES


#: errno values that mean the machine, not the model or unframe, ran out of something.
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NO_MEMORY = {errno.ENOMEM}
#: A process's file-size limit (``ulimit -f``; CPython ignores SIGXFSZ, so the write fails).
_FILE_TOO_BIG = {errno.EFBIG}


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def unexpected_error(
    error: BaseException, doing: str, *, needed_bytes: int | None = None, **location: Any
) -> UnframeError:
    """The error to raise for an exception unframe did not raise on purpose.

    A deliberate ``UnframeError`` is returned unchanged (it keeps its exit code). Running out of
    memory or disk becomes a ``ResourceError`` (exit 6) that says what to try; a file that is
    missing or may not be written is a ``BadInputError`` (exit 2) naming it; anything else is a
    bug in unframe, an ``InternalError`` (exit 5). ``doing`` names what failed ("the pytorch
    export converter"); ``needed_bytes`` (the model's weights) says how much the job needed;
    ``location`` takes ``UnframeError``'s keywords (path, framework, node...).
    """
    if isinstance(error, UnframeError):
        return error
    errno_value = getattr(error, "errno", None)
    # torch's CPU allocator reports exhaustion as a RuntimeError, not a MemoryError.
    if (
        isinstance(error, MemoryError)
        or errno_value in _NO_MEMORY
        or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error))
    ):
        need = f" (the model's weights are {_size(needed_bytes)})" if needed_bytes else ""
        return ResourceError(
            f"ran out of memory or address space in {doing}{need}",
            hint="close other programs, raise the limit (ulimit -v) or use a machine with more "
            "memory; keep large weights in ONNX external data, which unframe maps from disk",
            **location,
        )
    if isinstance(error, OSError) and errno_value in _DISK_FULL | _FILE_TOO_BIG:
        where = f" writing {error.filename}" if error.filename else ""
        need = f" (the weights alone are {_size(needed_bytes)})" if needed_bytes else ""
        what = (
            "a file grew past the file-size limit (ulimit -f)"
            if errno_value in _FILE_TOO_BIG
            else "no space left on the disk"
        )
        return ResourceError(
            f"{what}{where} in {doing}{need}",
            hint="free disk space (or raise the limit) where the output goes and in the "
            "temporary directory (TMPDIR); nothing partial was left",
            **location,
        )
    if (
        isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError)
        and error.filename
    ):
        # A path the user named or a folder they may not write: theirs to fix, not a bug.
        location["path"] = str(error.filename)
        return BadInputError(error.strerror or type(error).__name__, **location)
    text = str(error).strip()
    first_line = f": {text.splitlines()[0]}" if text else ""
    return InternalError(f"{doing} failed with {type(error).__name__}{first_line}", **location)


@dataclass(frozen=True)
class UnsupportedOp:
    """One node that a framework's backend (or frontend) cannot convert."""

    node: str
    op_type: str
    domain: str = ""
    opset: int | None = None
    reason: str = "no converter"

    @property
    def qualified_type(self) -> str:
        return f"{self.domain}::{self.op_type}" if self.domain else self.op_type


class UnsupportedOpsError(UnsupportedError):
    """Every unsupported node of a model, found in one scan before anything is written."""

    def __init__(
        self,
        ops: Sequence[UnsupportedOp],
        *,
        framework: str,
        direction: str = "export",
        path: str | None = None,
    ) -> None:
        self.ops = list(ops)
        self.direction = direction
        counts = Counter(op.qualified_type for op in self.ops)
        summary = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
        message = (
            f"{framework} cannot {direction} {len(counts)} op type(s) on {len(self.ops)} node(s): "
            f"{summary}"
        )
        super().__init__(
            message,
            path=path,
            framework=framework,
            hint="see the list below; unframe never guesses an op's meaning",
        )

    def details(self) -> list[str]:
        """One line per node, for the CLI to print under the summary."""
        lines = []
        for op in self.ops:
            opset = f", opset {op.opset}" if op.opset is not None else ""
            lines.append(f"  node {op.node!r}: {op.qualified_type}{opset}: {op.reason}")
        return lines
