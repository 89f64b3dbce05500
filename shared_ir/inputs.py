"""Input specifications (``--input NAME=D1,D2:DTYPE``) and seeded example inputs.

A dim may be a number, a symbol (``batch``), ``?``, or a range ``LO..HI``: dynamic, with those
bounds where the target needs them (Core ML's flexible shapes), its lower bound in examples.

Validation feeds both sides of a conversion the very same arrays, made here from a fixed seed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.limits import check_tensor_bytes, declared_bytes

DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name)
    for name in (
        "float32",
        "float64",
        "float16",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    )
}
DTYPES.update(
    {"float": np.dtype("float32"), "double": np.dtype("float64"), "int": np.dtype("int64")}
)

_SPEC = re.compile(r"^(?P<name>[^=]+)=(?P<dims>[^:]*)(?::(?P<dtype>\w+))?$")
_RANGE = re.compile(r"^(?P<low>\d+)\.\.(?P<high>\d+)$")


@dataclass(frozen=True)
class InputSpec:
    """A model input's concrete shape (``None`` dims stay dynamic) and optional dtype.

    ``bounds`` holds, per axis, the ``(low, high)`` of a range dim (whose ``shape`` entry is
    ``None``), else ``None``; it is ``None`` where no dim is a range.
    """

    name: str
    shape: tuple[int | str | None, ...] | None = None
    dtype: np.dtype | None = None
    bounds: tuple[tuple[int, int] | None, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parses ``NAME=D1,D2,...[:DTYPE]``; a dim may be a number, a symbol (``batch``), ``?``
        or a range ``LO..HI`` (``x=1..32,3,224,224``)."""
        match = _SPEC.match(text.strip())
        if not match:
            raise BadInputError(
                f"--input {text!r} is not NAME=D1,D2,...[:DTYPE]", hint="e.g. --input x=1,3,224,224"
            )
        dims: list[int | str | None] = []
        bounds: list[tuple[int, int] | None] = []
        for dim in filter(None, match["dims"].split(",")):
            dim = dim.strip()
            span = _RANGE.match(dim)
            if span is not None:
                low, high = int(span["low"]), int(span["high"])
                if not 1 <= low <= high:
                    raise BadInputError(
                        f"--input {text!r}: the range {dim} needs 1 <= LO <= HI",
                        hint="e.g. --input x=1..32,3,224,224",
                    )
                dims.append(None)
                bounds.append((low, high))
                continue
            if ".." in dim:
                raise BadInputError(
                    f"--input {text!r}: {dim!r} is not a range LO..HI",
                    hint="e.g. --input x=1..32,3,224,224",
                )
            dims.append(int(dim) if dim.lstrip("-").isdigit() else (None if dim == "?" else dim))
            bounds.append(None)
        dtype = None
        if match["dtype"]:
            if match["dtype"] not in DTYPES:
                raise BadInputError(
                    f"--input {text!r}: unknown dtype {match['dtype']!r}",
                    hint=f"one of {', '.join(sorted(DTYPES))}",
                )
            dtype = DTYPES[match["dtype"]]
        ranges = tuple(bounds) if any(bounds) else None
        return cls(match["name"].strip(), tuple(dims), dtype, ranges)


def parse_input_specs(texts: tuple[str, ...] | list[str]) -> dict[str, InputSpec]:
    specs = [InputSpec.parse(text) for text in texts]
    return {spec.name: spec for spec in specs}


def _concrete_dims(name: str, shape: ir.Shape | None, spec: InputSpec | None) -> tuple[int, ...]:
    if spec is not None and spec.shape is not None:
        lows = [span[0] if span else None for span in spec.bounds or ()]
        dims = tuple(
            lows[axis] if axis < len(lows) and lows[axis] else dim
            for axis, dim in enumerate(spec.shape)
        )
    elif shape is not None:
        dims = tuple(d if isinstance(d, int) else None for d in shape)
    else:
        raise BadInputError(
            f"input {name!r} has no known shape", hint=f"give one with --input {name}=D1,D2,..."
        )
    # A symbolic or unknown dim gets 1: batch and sequence axes take any size, 1 is always legal.
    return tuple(d if isinstance(d, int) and d >= 0 else 1 for d in dims)


def example_inputs(
    inputs: list[ir.Value], specs: Mapping[str, InputSpec] | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Seeded arrays for the graph inputs ``inputs`` (initializer-backed inputs skipped)."""
    specs = specs or {}
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for value in inputs:
        if value.const_value is not None:
            continue
        name = value.name or ""
        spec = specs.get(name)
        dims = _concrete_dims(name, value.shape, spec)
        if spec is not None and spec.dtype is not None:
            dtype = spec.dtype
        elif value.dtype is not None:
            dtype = value.dtype.numpy()
        else:
            dtype = np.dtype("float32")
        arrays[name] = random_array(rng, dims, dtype, what=f"input {name!r}")
    return arrays


def random_array(
    rng: np.random.Generator,
    dims: tuple[int, ...],
    dtype: np.dtype,
    *,
    what: str = "an example input",
) -> np.ndarray:
    """Values a model can take: normal floats, small non-negative ints (safe as indices).

    The declared size is checked against the tensor limit first (``LimitExceededError``): a
    graph input may declare a dim of 2^32 + 1, which numpy would try to allocate.
    """
    dtype = np.dtype(dtype)
    try:
        nbytes = declared_bytes(dims, dtype.itemsize * 8)
    except ValueError as error:
        raise BadInputError(f"{what} has a {error}") from None
    check_tensor_bytes(nbytes, what=f"{what} (shape {list(dims)}, {dtype.name})")
    if dtype == np.bool_:
        return rng.integers(0, 2, size=dims).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 4, size=dims).astype(dtype)
    return rng.standard_normal(size=dims).astype(dtype)


def align_feeds(names: list[str], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` keyed by ``names``: by name where every name is present, else by position.

    Converters may rename inputs (sanitized blob names, PyTorch placeholders), so validation feeds
    the converted model positionally when the names differ.
    """
    if set(names) <= set(feeds):
        return {name: feeds[name] for name in names}
    values = list(feeds.values())
    if len(values) < len(names):
        raise BadInputError(
            f"the model takes {len(names)} inputs ({', '.join(names)}) but {len(values)} were given"
        )
    return dict(zip(names, values, strict=False))


def fix_input_shapes(
    model: ir.Model,
    specs: Mapping[str, InputSpec],
    *,
    keep_dynamic: Mapping[str, Sequence[int]] | None = None,
    path: str | None = None,
    framework: str | None = None,
) -> dict[ir.Value, ir.Shape | None]:
    """Gives the graph inputs ``specs`` names (``--input``) the dims it gives as numbers.

    A symbol, ``?`` or range in a spec keeps the model's dim, and so does an axis in
    ``keep_dynamic`` (``--dynamic``: the axes a PyTorch trace keeps dynamic, its ``--input`` then
    being the example's shape); an input of unknown rank takes the spec's. Intermediate values
    keep their dims (a backend re-derives them). Returns each changed input's previous shape.

    Raises:
        BadInputError: a spec naming no input, or disagreeing with its rank or a fixed dim.
    """
    initializers = set(model.graph.initializers.values())
    inputs = {v.name: v for v in model.graph.inputs if v not in initializers}
    unknown = [name for name in specs if name not in inputs]
    if unknown:
        raise BadInputError(
            f"--input names {', '.join(unknown)}, which the model does not take",
            framework=framework,
            path=path,
            hint=f"its inputs: {', '.join(n or '?' for n in inputs) or 'none'}",
        )
    previous: dict[ir.Value, ir.Shape | None] = {}
    for name, spec in specs.items():
        if spec.shape is None:
            continue
        value = inputs[name]
        kept = set((keep_dynamic or {}).get(name, ()))
        dims = _fixed_dims(value, spec, kept, path, framework)
        if value.shape is None or list(value.shape) != dims:
            previous[value] = value.shape
            value.shape = ir.Shape(dims)
    return previous


def _fixed_dims(
    value: ir.Value, spec: InputSpec, kept: set[int], path: str | None, framework: str | None
) -> list[Any]:
    given = list(spec.shape or ())
    if value.shape is None:
        # No rank in the model: --input gives it (its dims that are not numbers stay dynamic).
        return [
            d if isinstance(d, int) and d >= 0 and axis not in kept else None
            for axis, d in enumerate(given)
        ]
    if len(given) != len(value.shape):
        raise BadInputError(
            f"--input {value.name}: gives {len(given)} dims, the input has {len(value.shape)}",
            framework=framework,
            path=path,
        )
    dims: list[Any] = []
    for axis, (dim, fixed) in enumerate(zip(value.shape, given, strict=True)):
        if not isinstance(fixed, int) or fixed < 0 or axis in kept:
            dims.append(dim)
        elif isinstance(dim, int) and dim != fixed:
            raise BadInputError(
                f"--input {value.name}: axis {axis} of this input is {dim}, not {fixed}",
                framework=framework,
                path=path,
            )
        else:
            dims.append(fixed)
    return dims
