"""PyTorch module -> IR through ``torch.onnx.export``: the dynamo exporter, TorchScript as fallback.

The dynamo exporter (``torch.export`` + onnxscript) hands back an ``onnx_ir`` model, which we take
as it is, without writing a file. The TorchScript exporter is used only where the dynamo path fails
(and for TorchScript modules, which ``torch.export`` cannot capture); a warning says so and why.
"""

from __future__ import annotations

import inspect
import io
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import onnx
import onnx_ir as ir
import torch

from unframe.backends.pytorch.native import fresh_export_state, quiet_torch
from unframe.frontends.pytorch.global_pool import GlobalAveragePoolPass
from unframe.shared_ir.errors import BadInputError, UnsupportedError
from unframe.shared_ir.passes import optimize_torch_export

#: The opset the dynamo exporter writes natively; it starts at 18.
DEFAULT_OPSET = 18

#: ``{input name: {axis: dim name}}``, the form both exporters can be given.
NamedAxes = dict[str, dict[int, str]]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ExporterFallbackWarning(UserWarning):
    """The dynamo exporter failed (or cannot apply) and the TorchScript exporter was used."""


def from_torch(
    module: torch.nn.Module | torch.export.ExportedProgram,
    example_inputs: Any = (),
    dynamic_shapes: Any = None,
    input_names: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    *,
    path: str | None = None,
) -> ir.Model:
    """Converts a PyTorch module (or an ``ExportedProgram``) to the IR.

    Args:
        module: an ``nn.Module``, a TorchScript module, or a ``torch.export.ExportedProgram``.
        example_inputs: one tensor, a tuple of positional tensors, or a mapping of keyword tensors.
            Ignored for an ``ExportedProgram``, which carries its own.
        dynamic_shapes: which axes stay symbolic: either ``{input name: (axis, ...)}`` or anything
            ``torch.export`` accepts (``{name: {axis: Dim | str}}``, tuples of those).
        input_names: names for the graph inputs; forward's argument names by default.
        opset: the ONNX opset of the result.
        path: the file the module came from, only to say where in error messages.

    Returns:
        The model as an ``onnx_ir`` model.

    Raises:
        BadInputError: ``dynamic_shapes`` names an input the model does not take.
        UnsupportedError: neither exporter could convert the module; the message names the step
            and the exporter's own reason.
    """
    args, kwargs = _split_inputs(example_inputs)
    is_program = isinstance(module, torch.export.ExportedProgram)
    names = list(input_names) if input_names else _forward_names(module, len(args), kwargs)
    named_axes = _named_axes(dynamic_shapes, names)
    if named_axes is not None:
        unknown = sorted(set(named_axes) - set(names))
        if unknown:
            raise BadInputError(
                f"dynamic_shapes names {', '.join(unknown)}, which the model does not take",
                path=path,
                framework="pytorch",
                hint=f"inputs: {', '.join(names) or 'none'}",
            )
        # torch.export wants every input named, static ones as None.
        torch_shapes: Any = {name: named_axes.get(name) for name in names} | named_axes
    else:
        torch_shapes = dynamic_shapes

    if isinstance(module, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        reason = "torch.export cannot capture a TorchScript module"
    else:
        try:
            return _export_dynamo(
                module,
                () if is_program else args,
                None if is_program else kwargs,
                None if is_program else torch_shapes,
                input_names,
                opset,
            )
        except Exception as error:  # noqa: BLE001 - any exporter failure is reported or retried
            step = _dynamo_step(error)
            reason = f"{step} failed: {exporter_reason(error)}"
            if _is_constraint_violation(error):
                # The model itself fixes an axis the user asked to keep dynamic: a traced
                # fallback would bake that size in silently, so say it instead.
                raise UnsupportedError(
                    f"{reason}",
                    path=path,
                    framework="pytorch",
                    hint="drop that axis from --dynamic, or make the model accept any size there",
                ) from None
            if is_program:
                # An ExportedProgram is already torch.export's capture; the TorchScript exporter
                # cannot trace its module (it refuses train()/eval()), so there is no fallback.
                raise UnsupportedError(
                    f"cannot convert the exported program: {reason}", path=path, framework="pytorch"
                ) from None

    warnings.warn(
        f"{path + ': ' if path else ''}using the TorchScript exporter (torch.onnx.export "
        f"dynamo=False) because {reason}",
        ExporterFallbackWarning,
        stacklevel=2,
    )
    assert not isinstance(module, torch.export.ExportedProgram)
    try:
        return _export_torchscript(
            module,
            args,
            kwargs,
            names,
            _fallback_axes(named_axes, dynamic_shapes, names),
            opset,
        )
    except Exception as error:  # noqa: BLE001 - reported with both exporters' reasons
        raise UnsupportedError(
            f"cannot convert the model: {reason}; the TorchScript exporter failed too: "
            f"{exporter_reason(error)}",
            path=path,
            framework="pytorch",
        ) from None


# -- the two exporters ------------------------------------------------------------------------


def _export_dynamo(
    module: torch.nn.Module | torch.export.ExportedProgram,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    dynamic_shapes: Any,
    input_names: Sequence[str] | None,
    opset: int,
) -> ir.Model:
    fresh_export_state()  # else a second export in a process unrolls nn.GRU/LSTM
    with quiet_torch():
        program = torch.onnx.export(
            module,
            args,
            kwargs=kwargs or None,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=list(input_names) if input_names else None,
            opset_version=opset,
            # Its optimizer, run here with rules looked up by op type (the same result).
            optimize=False,
            verbose=False,
        )
    if program is None:  # pragma: no cover - only when given a file to write
        raise RuntimeError("torch.onnx.export returned no program")
    model: ir.Model = program.model
    optimize_torch_export(model)
    GlobalAveragePoolPass()(model)
    return model


def _export_torchscript(
    module: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    names: list[str],
    dynamic_axes: NamedAxes,
    opset: int,
) -> ir.Model:
    if kwargs:
        args = args + tuple(kwargs[name] for name in names[len(args) :] if name in kwargs)
    buffer = io.BytesIO()
    with quiet_torch():
        torch.onnx.export(
            module,
            args,
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to any stream
            dynamo=False,
            input_names=names[: len(args)],
            dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()} or None,
            opset_version=opset,
            do_constant_folding=True,
        )
    return ir.from_proto(onnx.load_from_string(buffer.getvalue()))


# -- inputs, names and dynamic axes -----------------------------------------------------------


def _split_inputs(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, Sequence):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def forward_parameters(module: Any) -> list[str] | None:
    """Names of forward's parameters (without ``self``), or None where they cannot be known."""
    if isinstance(module, torch.export.ExportedProgram):
        return [spec.arg.name for spec in module.graph_signature.input_specs if _is_user(spec)]
    if isinstance(module, torch.jit.ScriptModule):
        schema: Any = getattr(module.forward, "schema", None)
        return None if schema is None else [arg.name for arg in schema.arguments[1:]]
    if isinstance(module, torch.jit.ScriptFunction):
        function_schema: Any = module.schema
        return [arg.name for arg in function_schema.arguments]
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError, AttributeError):
        return None
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            return None
        names.append(parameter.name)
    return names


def _is_user(spec: Any) -> bool:
    return bool(spec.kind == torch.export.graph_signature.InputKind.USER_INPUT)


def _forward_names(module: Any, n_args: int, kwargs: Mapping[str, Any]) -> list[str]:
    names = forward_parameters(module)
    if names is None:
        return [f"input_{i}" for i in range(n_args)] + list(kwargs)
    positional = names[:n_args] + [f"input_{i}" for i in range(len(names), n_args)]
    return positional + [name for name in names[n_args:] if name in kwargs]


def _named_axes(dynamic_shapes: Any, names: list[str]) -> NamedAxes | None:
    """``{name: (axis, ...)}`` -> ``{name: {axis: dim name}}``; None where not of that form."""
    if not isinstance(dynamic_shapes, Mapping) or not dynamic_shapes:
        return None
    named: NamedAxes = {}
    for name, axes in dynamic_shapes.items():
        if isinstance(axes, Sequence) and all(isinstance(axis, int) for axis in axes):
            named[name] = {axis: f"{name}_dim{axis}" for axis in axes}
        elif isinstance(axes, Mapping) and all(isinstance(dim, str) for dim in axes.values()):
            named[name] = {int(axis): dim for axis, dim in axes.items()}
        else:
            return None
    return named


def _fallback_axes(named: NamedAxes | None, dynamic_shapes: Any, names: list[str]) -> NamedAxes:
    """The TorchScript exporter's ``dynamic_axes`` for the same axes as ``dynamic_shapes``."""
    if named is not None:
        return named
    if dynamic_shapes is None:
        return {}
    items: Sequence[tuple[str, Any]]
    if isinstance(dynamic_shapes, Mapping):
        items = list(dynamic_shapes.items())
    else:
        items = list(zip(names, dynamic_shapes, strict=False))
    axes: NamedAxes = {}
    for name, spec in items:
        if isinstance(spec, Mapping):
            pairs = list(spec.items())
        elif isinstance(spec, Sequence):
            pairs = [(axis, dim) for axis, dim in enumerate(spec) if dim is not None]
        else:
            continue
        axes[name] = {
            int(axis): getattr(dim, "__name__", f"{name}_dim{axis}") for axis, dim in pairs
        }
    return axes


# -- error reasons ----------------------------------------------------------------------------


def exporter_reason(error: BaseException) -> str:
    """The exporter's own reason: the innermost cause's first line, with its type."""
    innermost = error
    seen = {id(error)}
    while innermost.__cause__ is not None and id(innermost.__cause__) not in seen:
        innermost = innermost.__cause__
        seen.add(id(innermost))
    text = _first_line(innermost)
    if not text and innermost is not error:
        text = _first_line(error)
    return f"{type(innermost).__name__}: {text}" if text else type(innermost).__name__


def _first_line(error: BaseException) -> str:
    """The first line of a message, with the detail line after it where it ends in a colon."""
    text = _ANSI.sub("", str(error))
    summary = text.split("## Exception summary", 1)
    if len(summary) == 2:
        text = summary[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if len(lines) > 1 and (first.endswith((":", "!")) or lines[1].startswith("- ")):
        first = f"{first} {lines[1].removeprefix('- ')}"
    return first if len(first) <= _MAX_REASON else first[: _MAX_REASON - 3] + "..."


_MAX_REASON = 400


def _dynamo_step(error: BaseException) -> str:
    name = type(error).__name__
    if name == "TorchExportError":
        return "torch.export"
    if name in ("ConversionError", "DispatchError", "GraphConstructionError"):
        return "translation of the exported graph to ONNX"
    return "the dynamo exporter"


def _is_constraint_violation(error: BaseException) -> bool:
    """Whether torch.export refused because the model fixes an axis asked to stay dynamic."""
    current: BaseException | None = error
    while current is not None:
        if type(current).__name__ == "ConstraintViolationError" or any(
            marker in str(current) for marker in _CONSTRAINT_MARKERS
        ):
            return True
        current = current.__cause__
    return False


_CONSTRAINT_MARKERS = (
    "conflicts between user-specified ranges and inferred ranges",
    "Constraints violated",
)
