"""Saving the built module as ``.pt2`` (``torch.export``) and running ``.pt2``/TorchScript files.

A saved ``.pt2`` loads with ``torch.export.load(path).module()`` and plain torch; unframe only adds
an ``unframe.json`` extra file with the ONNX input and output names so that ``run`` can key outputs
by them, ``initializers``: each ``state_dict`` key with the ONNX initializer it came from, and
``values``: the intermediate ONNX values, keyed by the names torch.onnx will give them
(``pt2_names.source_names`` reads them back).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import torch
from torch import fx

from unframe.backends.pytorch.driver import FRAMEWORK, ONNX_NAME, SOURCE_NAMES, to_torch
from unframe.backends.pytorch.dtypes import maybe_torch_dtype, widen_emulated
from unframe.backends.pytorch.native.dispatch import fresh_export_state
from unframe.backends.pytorch.native.pt2_names import UNFRAME_JSON, source_names
from unframe.backends.pytorch.native.pt2_read import pt2_load_faster
from unframe.backends.pytorch.native.pt2_weights import weights_written_from_storage
from unframe.backends.pytorch.native.quiet import quiet_torch
from unframe.shared_ir.errors import (
    BadInputError,
    ConversionError,
    ResourceError,
    unexpected_error,
)
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.io import EXTERNAL_DATA_THRESHOLD, initializer_bytes

__all__ = [
    "example_tensors",
    "export_program",
    "outputs_to_numpy",
    "run_native",
    "save_pt2",
    "source_names",
    "tensors_from_numpy",
]

#: Example sizes for symbolic dims (torch.export specializes 0 and 1; tracing is on fake tensors,
#: so a generous size for later axes costs nothing and survives downsampling).
_EXAMPLE_BATCH = 2
_EXAMPLE_DIM = 64


def example_tensors(
    inputs: Sequence[ir.Value],
    specs: Mapping[str, InputSpec] | None = None,
    seed: int = 0,
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
) -> tuple[tuple[torch.Tensor, ...], tuple[dict[int, Any] | None, ...]]:
    """Example inputs for ``torch.export`` and the matching ``dynamic_shapes`` (tuple form).

    Symbolic dims of the IR (and the axes named in ``dynamic_axes``) stay dynamic.
    """
    specs = specs or {}
    dynamic_axes = dynamic_axes or {}
    generator = np.random.default_rng(seed)
    tensors = []
    dynamic: list[dict[int, Any] | None] = []
    example_sizes: dict[str, int] = {}
    for value in inputs:
        spec = specs.get(value.name or "")
        shape: Any = spec.shape if spec and spec.shape is not None else value.shape
        if shape is None:
            raise BadInputError(
                f"input {value.name!r} has no known shape",
                framework=FRAMEWORK,
                hint=f"give one with --input {value.name}=D1,D2,...",
            )
        dims = []
        axes: dict[int, Any] = {}
        forced = {a % max(len(shape), 1) for a in dynamic_axes.get(value.name or "", ())}
        for axis, dim in enumerate(shape):
            static = isinstance(dim, int) and dim >= 0
            if static and axis not in forced:
                dims.append(dim)
                continue
            if static and dim > 1:
                dims.append(dim)
            else:
                default = _EXAMPLE_BATCH if axis == 0 else _EXAMPLE_DIM
                # Inputs sharing a named dim (X's batch and sequence_lens) must agree on it.
                name = _dim_name(dim)
                dims.append(default if name is None else example_sizes.setdefault(name, default))
            axes[axis] = torch.export.Dim.AUTO
        dtype = (spec.dtype if spec and spec.dtype is not None else None) or (
            value.dtype.numpy() if value.dtype is not None else np.dtype("float32")
        )
        tensors.append(_random_tensor(generator, tuple(dims), np.dtype(dtype)))
        dynamic.append(axes or None)
    return tuple(tensors), tuple(dynamic)


def _dim_name(dim: Any) -> str | None:
    name = dim.value if isinstance(dim, ir.SymbolicDim) else dim
    return name if isinstance(name, str) and name else None


def _random_tensor(
    generator: np.random.Generator, dims: tuple[int, ...], dtype: np.dtype
) -> torch.Tensor:
    if dtype == np.bool_:
        array = generator.integers(0, 2, size=dims).astype(np.bool_)
    elif np.issubdtype(dtype, np.integer) or dtype.name in ("int4", "uint4", "int2", "uint2"):
        array = generator.integers(0, 2, size=dims).astype(dtype)
    else:
        array = generator.standard_normal(size=dims).astype(np.float32).astype(dtype)
    (tensor,) = tensors_from_numpy([array])  # bfloat16/float8/int4... in their torch form
    return tensor


def export_program(
    model: ir.Model,
    specs: Mapping[str, InputSpec] | None = None,
    module: fx.GraphModule | None = None,
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
) -> torch.export.ExportedProgram:
    """``torch.export`` of the converted module, symbolic input dims kept dynamic."""
    module = module if module is not None else to_torch(model)
    inputs = [v for v in model.graph.inputs if v not in model.graph.initializers.values()]
    args, dynamic = example_tensors(inputs, specs, dynamic_axes=dynamic_axes)
    fresh_export_state()  # traces cached by an earlier export could fix this one's sizes
    try:
        # torch logs the failing trace itself (torch._dynamo, torch.export); ours is one line.
        with torch.no_grad(), quiet_torch():
            return torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
    except Exception as error:
        resources = unexpected_error(
            error, "torch.export", needed_bytes=initializer_bytes(model), framework=FRAMEWORK
        )
        if isinstance(resources, ResourceError):  # out of memory is the machine's, not the op's
            raise resources from error
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"torch.export failed: {first}", framework=FRAMEWORK) from error


def save_pt2(
    model: ir.Model,
    path: Path,
    specs: Mapping[str, InputSpec] | None = None,
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
) -> None:
    """Writes ``model`` as a ``.pt2`` file loadable with ``torch.export.load(path).module()``.

    Symbolic input dims (and ``dynamic_axes``: input name -> axes) stay dynamic in the program.
    """
    module = to_torch(model)
    program = export_program(model, specs, module=module, dynamic_axes=dynamic_axes)
    meta = {
        "inputs": [
            v.name for v in model.graph.inputs if v not in model.graph.initializers.values()
        ],
        "outputs": [v.name for v in model.graph.outputs],
        "initializers": module.meta[SOURCE_NAMES]["initializers"],
        # The names of intermediate values cost a second trace of the whole graph (a third of
        # a 1B-parameter LLaMA's save); above the size that goes to external data, the save goes
        # without them, and `validate --locate` finds a divergence by bisection instead.
        "values": (
            _value_names(model, module, program)
            if initializer_bytes(model) <= EXTERNAL_DATA_THRESHOLD
            else {}
        ),
    }
    with weights_written_from_storage():
        torch.export.save(program, str(path), extra_files={UNFRAME_JSON: json.dumps(meta)})


def _value_names(
    model: ir.Model, module: fx.GraphModule, program: torch.export.ExportedProgram
) -> dict[str, dict[str, str]]:
    """The ONNX values the program's nodes yield, keyed by the names torch.onnx gives them.

    torch.onnx names each ONNX value after the fx node of the *decomposed* program that yields it
    (``reshape`` becomes ``view``, ``add`` becomes ``add_16``), so the same decomposition runs here
    and each decomposed node is traced back through ``meta["from_node"]`` to the builder's fx node,
    which carries the ONNX name. Only 1:1 matches are kept: the last decomposed node made from one
    builder node that yields an ONNX value. ``target`` lets the reader check that it renames the
    node it means; the record is only a hint, so any failure here leaves it empty.
    """
    try:
        decomposed = _onnx_decomposition(program)
    except Exception:  # noqa: BLE001 - torch.onnx's internals vary between versions
        return {}
    tagged = {
        node.name: node.meta[ONNX_NAME]
        for node in module.graph.nodes
        if node.op == "call_function" and node.meta.get(ONNX_NAME)
    }
    producers = {
        value.name: node.name or "" for node in model.graph for value in node.outputs if value.name
    }
    last: dict[str, fx.Node] = {}  # builder node -> the last decomposed node made from it
    for node in decomposed.graph.nodes:
        sources = node.meta.get("from_node") or []
        if node.op != "call_function" or len(sources) != 1:
            continue
        root = sources[0]
        while root.from_node:
            root = root.from_node[-1]
        if root.graph_id == id(module.graph) and root.name in tagged:
            last[root.name] = node
    values: dict[str, dict[str, str]] = {}
    for builder_name, node in last.items():
        onnx_name = tagged[builder_name]
        if node.users and isinstance(node.meta.get("val"), torch.Tensor) and onnx_name in producers:
            values[node.name] = {
                "value": onnx_name,
                "node": producers[onnx_name],
                "target": str(node.target),
            }
    return values


def _onnx_decomposition(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """``program`` decomposed as ``torch.onnx.export`` decomposes it (a new program)."""
    from torch.onnx._internal.exporter import _fx_passes, _registration

    # The registry logs each torchvision op it skips; a save should print nothing of torch.onnx's.
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            registry = _registration.ONNXRegistry.from_torchlib()
            with torch.fx.experimental._config.patch(backed_size_oblivious=True):  # type: ignore[attr-defined]
                return _fx_passes.decompose_with_registry(program, registry)
    finally:
        onnx_logger.setLevel(level)


def run_native(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a ``.pt2`` (``torch.export``) or TorchScript (``.pt``/``.ts``) file on ``inputs``.

    Inputs are fed positionally in the mapping's order; outputs come keyed by the ONNX names where
    unframe wrote the file, else ``output_<i>``.
    """
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    runnable: Any
    if suffix == ".pt2":
        extra = {UNFRAME_JSON: ""}
        with open(path, "rb") as file, pt2_load_faster(file):
            program = torch.export.load(file, extra_files=extra)
        if extra[UNFRAME_JSON]:
            meta = json.loads(extra[UNFRAME_JSON])
        runnable = program.module()
    elif suffix in (".pt", ".ts", ".torchscript"):
        try:
            runnable = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise BadInputError(
                "not a TorchScript archive",
                path=str(path),
                framework=FRAMEWORK,
                hint="only .pt2 and TorchScript files can be run; pickled modules are never unpickled",
            ) from error
    else:
        raise BadInputError(f"cannot run {suffix} files", path=str(path), framework=FRAMEWORK)
    args = tensors_from_numpy(list(inputs.values()))
    with torch.no_grad():
        result = runnable(*args)
    return outputs_to_numpy(result, meta.get("outputs"))


def outputs_to_numpy(result: Any, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    if isinstance(result, torch.Tensor):
        result = (result,)
    elif isinstance(result, Mapping):
        return {str(k): _to_numpy(v) for k, v in result.items()}
    values = list(result)
    keys = (
        list(names)
        if names is not None and len(names) == len(values)
        else [f"output_{i}" for i in range(len(values))]
    )
    return {key: _to_numpy(value) for key, value in zip(keys, values, strict=True)}


def _to_numpy(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_to_numpy(v) for v in value]  # a sequence output
    if value is None:
        return None  # an empty optional
    if not isinstance(value, torch.Tensor):
        return np.asarray(value)
    value = value.detach().cpu()
    if value.dtype == torch.bfloat16:
        import ml_dtypes

        return value.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
    if value.dtype in (
        torch.float8_e4m3fn,
        torch.float8_e4m3fnuz,
        torch.float8_e5m2,
        torch.float8_e5m2fnuz,
    ):
        import ml_dtypes

        kinds = {
            torch.float8_e4m3fn: ml_dtypes.float8_e4m3fn,
            torch.float8_e4m3fnuz: ml_dtypes.float8_e4m3fnuz,
            torch.float8_e5m2: ml_dtypes.float8_e5m2,
            torch.float8_e5m2fnuz: ml_dtypes.float8_e5m2fnuz,
        }
        return value.view(torch.uint8).numpy().view(kinds[value.dtype])
    return value.numpy()


def tensors_from_numpy(arrays: Sequence[Any]) -> list[Any]:
    """Input arrays as tensors (bfloat16/float8 arrays reinterpreted bit for bit)."""
    out: list[Any] = []
    for index, array in enumerate(arrays):
        if isinstance(array, list | tuple):
            out.append(tensors_from_numpy(list(array)))  # a sequence input
            continue
        if array is None:
            out.append(None)  # an empty optional input
            continue
        array = widen_emulated(np.asarray(array))
        name = array.dtype.name
        if name in ("bfloat16",) or name.startswith("float8"):
            target = maybe_torch_dtype(ir.DataType.from_numpy(array.dtype))
            width = np.uint16 if name == "bfloat16" else np.uint8
            tensor = torch.from_numpy(array.copy(order="C").view(width))
            assert target is not None
            out.append(tensor.view(target))
            continue
        if array.dtype.kind in "SUO":
            raise BadInputError(
                f"input {index} is a string tensor, which torch cannot hold", framework=FRAMEWORK
            )
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = array.copy(order="C")
        out.append(torch.from_numpy(array))
    return out
