"""Reading an OperatorDef's arguments as Caffe2's ``ArgumentHelper`` does: one reader for all.

The importer and the reference executor both read arguments through :class:`ArgumentReader`;
each passes the function that makes its own located error for a malformed argument.
"""

from __future__ import annotations

from collections.abc import Callable

from unframe.backends.caffe2.native import caffe2_pb2


class ArgumentReader:
    """Reads one operator's arguments and remembers which ones were asked for.

    Args:
        op: the operator.
        error: makes the error raised for an argument of the wrong kind (it names the op).
    """

    def __init__(self, op: caffe2_pb2.OperatorDef, error: Callable[[str], Exception]) -> None:
        self.op = op
        self.args = {arg.name: arg for arg in op.arg}
        self.used: set[str] = set()
        self._error = error

    def has(self, name: str) -> bool:
        self.used.add(name)
        return name in self.args

    def get(self, name: str) -> caffe2_pb2.Argument | None:
        """The raw argument, for readers of fields the typed getters do not cover."""
        self.used.add(name)
        return self.args.get(name)

    def integer(self, name: str, default: int) -> int:
        arg = self.get(name)
        if arg is None:
            return default
        if arg.HasField("i"):
            return int(arg.i)
        if arg.HasField("f") and float(arg.f).is_integer():
            return int(arg.f)
        raise self._error(f"argument {name!r} must be an integer, got {describe(arg)}")

    def number(self, name: str, default: float) -> float:
        arg = self.get(name)
        if arg is None:
            return default
        if arg.HasField("f"):
            return float(arg.f)
        if arg.HasField("i"):
            return float(arg.i)
        raise self._error(f"argument {name!r} must be a number, got {describe(arg)}")

    def string(self, name: str, default: str) -> str:
        arg = self.get(name)
        if arg is None:
            return default
        if arg.HasField("s"):
            return arg.s.decode("utf-8", errors="replace")
        raise self._error(f"argument {name!r} must be a string, got {describe(arg)}")

    def integers(self, name: str) -> list[int] | None:
        """A repeated integer argument; None where it is absent."""
        arg = self.get(name)
        if arg is None:
            return None
        if arg.ints:
            return [int(v) for v in arg.ints]
        if arg.HasField("i"):
            return [int(arg.i)]
        if arg.floats and all(float(v).is_integer() for v in arg.floats):
            return [int(v) for v in arg.floats]
        # An empty repeated argument is a valid, empty list.
        if not (arg.HasField("f") or arg.HasField("s") or arg.strings):
            return []
        raise self._error(f"argument {name!r} must be a list of integers, got {describe(arg)}")

    def numbers(self, name: str) -> list[float] | None:
        """A repeated float argument; None where it is absent."""
        arg = self.get(name)
        if arg is None:
            return None
        if arg.floats:
            return [float(v) for v in arg.floats]
        if arg.ints:
            return [float(v) for v in arg.ints]
        if arg.HasField("f"):
            return [float(arg.f)]
        return []

    def unread(self) -> set[str]:
        """Arguments no getter asked for."""
        return set(self.args) - self.used


def describe(arg: caffe2_pb2.Argument) -> str:
    """What an argument holds, for messages: ``an argument with ints, f``."""
    fields = [descriptor.name for descriptor, _ in arg.ListFields() if descriptor.name != "name"]
    return f"an argument with {', '.join(fields) or 'no value'}"
