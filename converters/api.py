"""The Python API: load, save, convert, validate and roundtrip, each returning a result object.

Every conversion is backend(passes(frontend(src))); the two adapters are looked up in the registry,
so any pair of frameworks works without pairwise code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.converters.locate import LocateResult
from unframe.converters.registry import detect_framework, get_framework
from unframe.shared_ir import passes
from unframe.shared_ir.compare import DEFAULT_ATOL, DEFAULT_RTOL, OutputComparison, compare_models
from unframe.shared_ir.errors import (
    BadInputError,
    UnframeError,
    UnsupportedError,
    UnsupportedOpsError,
    unexpected_error,
)
from unframe.shared_ir.factory_spec import is_factory_spec
from unframe.shared_ir.imported_checks import check_imported
from unframe.shared_ir.inputs import (
    InputSpec,
    align_feeds,
    example_inputs,
    fix_input_shapes,
    parse_input_specs,
)
from unframe.shared_ir.io import EXTERNAL_DATA_THRESHOLD, initializer_bytes
from unframe.shared_ir.output import atomic_output, check_output
from unframe.shared_ir.runner import run_reference
from unframe.shared_ir.stats import model_summary

InputsArg = Mapping[str, InputSpec] | Iterable[str] | None


@dataclass
class ValidationResult:
    """Per-output comparison of a converted model against its source."""

    ok: bool
    how: str
    outputs: list[OutputComparison]
    rtol: float
    atol: float
    seconds: float = 0.0
    #: Why the comparison as a whole fails (nothing compared) and what weakens a pass.
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Where asked (``locate=True``): the first source node that diverges, once outputs differ.
    locate: LocateResult | None = None
    locate_requested: bool = False
    #: The compared outputs (source's, converted model's), for ``convert --report``'s plots.
    expected: dict[str, np.ndarray] | None = field(default=None, repr=False)
    actual: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok,
            "how": self.how,
            "outputs": [o.as_json() for o in self.outputs],
            "problems": self.problems,
            "warnings": self.warnings,
        }
        if self.locate_requested:
            data["locate"] = self.locate.as_json() if self.locate is not None else None
        return data


@dataclass
class ConversionResult:
    """What a conversion did: frameworks, paths, per-step timings, validation."""

    ok: bool
    source: str
    target: str
    input: str
    output: str
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    validation: ValidationResult | None = None
    model: ir.Model | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from": self.source,
            "to": self.target,
            "output": self.output,
            "seconds": round(self.seconds, 4),
            "steps": {k: round(v, 4) for k, v in self.steps.items()},
            "validation": self.validation.as_json() if self.validation else None,
        }


@dataclass
class RoundtripResult:
    """SRC -> IR -> FW -> IR: output agreement and graph statistics before and after."""

    ok: bool
    via: str
    how: str
    outputs: list[OutputComparison]
    before: dict[str, Any]
    after: dict[str, Any]
    seconds: float
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        keys = ("nodes", "parameters", "parameter_bytes", "ops")
        return {
            "ok": self.ok,
            "via": self.via,
            "how": self.how,
            "seconds": round(self.seconds, 4),
            "outputs": [o.as_json() for o in self.outputs],
            "problems": self.problems,
            "warnings": self.warnings,
            "stats": {
                "before": {k: self.before[k] for k in keys},
                "after": {k: self.after[k] for k in keys},
            },
        }


# -- helpers ---------------------------------------------------------------------------------


def _framework(name: str | Framework | None, path: Path | str, *, for_writing: bool) -> Framework:
    if isinstance(name, Framework):
        framework = name
    elif name:
        framework = get_framework(name)
    else:
        framework = detect_framework(path, for_writing=for_writing)
    framework.ensure_installed()
    return framework


def _specs(inputs: InputsArg) -> dict[str, InputSpec]:
    if inputs is None:
        return {}
    if isinstance(inputs, Mapping):
        return dict(inputs)
    return parse_input_specs(list(inputs))


def _source_path(src: Path | str) -> Path:
    path = Path(str(src))
    # Only an explicit factory spec (``py:file.py:make_model``) is not a path; ``x.onnx:w`` is one.
    if not path.exists() and not is_factory_spec(src):
        raise BadInputError("no such file or directory", path=str(src))
    return path


def _options(
    opset: int | None, inputs: InputsArg, dynamic: Mapping[str, Any] | None, extra: dict[str, Any]
) -> ConvertOptions:
    return ConvertOptions(
        opset=opset,
        inputs=_specs(inputs),
        dynamic={k: tuple(v) for k, v in (dynamic or {}).items()},
        extra=extra,
    )


def _load(framework: Framework, path: Path, options: ConvertOptions) -> ir.Model:
    try:
        model = framework.load(path, options)
        if framework.checks_imported_ir and not options.extra.get("inspect"):
            check_imported(model, path)
        return model
    except UnframeError as error:
        error.path = error.path or str(path)
        error.framework = error.framework or framework.name
        raise
    except Exception as error:  # noqa: BLE001 - a bug (exit 5) or no memory (6), located
        raise unexpected_error(
            error,
            f"the {framework.name} frontend",
            needed_bytes=_file_bytes(path),
            path=str(path),
            framework=framework.name,
        ) from error


def _file_bytes(path: Path) -> int | None:
    """The size of a model file (what its weights need, near enough), None for a folder."""
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


# -- public API ------------------------------------------------------------------------------


def load(
    path: Path | str, framework: str | None = None, *, inputs: InputsArg = None, **options: Any
) -> ir.Model:
    """Reads a model of any registered framework into the IR."""
    source = _source_path(path)
    adapter = _framework(framework, path, for_writing=False)
    return _load(adapter, source, _options(None, inputs, options.pop("dynamic", None), options))


def save(
    model: ir.Model,
    path: Path | str,
    framework: str | None = None,
    *,
    force: bool = False,
    opset: int | None = None,
    **options: Any,
) -> Path:
    """Writes ``model`` with a framework's backend, atomically; returns the written path."""
    target = Path(str(path))
    adapter = _framework(framework, target, for_writing=True)
    unsupported = adapter.unsupported_nodes(model)
    if unsupported:
        raise UnsupportedOpsError(unsupported, framework=adapter.name, path=str(target))
    with atomic_output(
        target,
        force=force,
        directory=adapter.writes_directory,
        is_own_output=adapter.is_own_output,
    ) as temporary:
        _save(adapter, model, temporary, target, _options(opset, None, None, options))
    return target


def _source_does_not_run(
    model: ir.Model, source_path: Path, options: ConvertOptions
) -> BadInputError | None:
    """Where a backend failed on a model: the input's fault if the model itself cannot run.

    Only on the failure path: the source is run once on onnxruntime (or onnx's reference) with
    seeded inputs. A model that fails there too is a broken input (exit 2 naming it), not an
    unsupported feature of the target (exit 3 naming the output).
    """
    if initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD:
        return None  # a check would copy gigabytes: keep the backend's own error
    try:
        feeds = example_inputs(list(model.graph.inputs), options.inputs)
    except UnframeError:
        return None  # no inputs to try it with: keep the backend's own error
    try:
        # onnxruntime's own reason is what counts; its fallback's success does not clear it.
        text = run_reference(model, feeds).fallback_reason
    except Exception as error:  # noqa: BLE001 - a failure to run is the model's
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if text is None or "NOT_IMPLEMENTED" in text or "implementation" in text:
        return None  # it runs, or onnxruntime lacks an op: that says nothing about the model
    if "MLDataType" in text:
        return None  # onnxruntime's Python API takes no float8/int4 feeds: nor does that
    return BadInputError(
        f"the model does not run ({text[:300]})",
        path=str(source_path),
        hint="the input is inconsistent: onnxruntime refuses it too",
    )


def _save(
    adapter: Framework, model: ir.Model, temporary: Path, target: Path, options: ConvertOptions
) -> None:
    try:
        adapter.save(model, temporary, options)
    except UnframeError as error:
        error.path = str(target) if error.path in (None, str(temporary)) else error.path
        error.framework = error.framework or adapter.name
        raise
    except Exception as error:  # noqa: BLE001 - a bug (exit 5) or a full disk (6), located
        raise unexpected_error(
            error,
            f"the {adapter.name} backend",
            needed_bytes=initializer_bytes(model),
            path=str(target),
            framework=adapter.name,
        ) from error


def convert(
    src: Path | str,
    dst: Path | str,
    source: str | None = None,
    target: str | None = None,
    *,
    opset: int | None = None,
    inputs: InputsArg = None,
    dynamic: Mapping[str, Any] | None = None,
    validate: bool = False,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    force: bool = False,
    optimize: bool = True,
    feeds: Mapping[str, np.ndarray] | None = None,
    locate: bool = False,
    **options: Any,
) -> ConversionResult:
    """Converts ``src`` into ``dst``: backend(passes(frontend(src))), optionally validated.

    ``feeds`` (input name -> array) replace the seeded validation inputs; ``locate`` finds the
    first diverging node where validation fails (``converters.locate``).
    """
    started = time.perf_counter()
    source_path = _source_path(src)
    target_path = Path(str(dst))
    source_fw = _framework(source, src, for_writing=False)
    target_fw = _framework(target, dst, for_writing=True)
    # Refused before any work: an existing output without --force, or one that is not ours.
    check_output(
        target_path,
        force=force,
        directory=target_fw.writes_directory,
        is_own_output=target_fw.is_own_output,
    )
    convert_options = _options(opset, inputs, dynamic, options)
    steps: dict[str, float] = {}

    tick = time.perf_counter()
    model = _load(source_fw, source_path, convert_options)
    steps["import"] = time.perf_counter() - tick

    tick = time.perf_counter()
    if optimize:
        model = passes.optimize(
            model, reload=lambda: _load(source_fw, source_path, convert_options)
        )
    steps["passes"] = time.perf_counter() - tick
    # --input fixes the dims it gives as numbers in what every target writes (the axes
    # --dynamic names stay dynamic: a PyTorch trace's --input is only its example's shape).
    fix_input_shapes(
        model,
        convert_options.inputs,
        keep_dynamic=convert_options.dynamic,
        path=str(source_path),
        framework=source_fw.name,
    )

    unsupported = target_fw.unsupported_nodes(model)
    if unsupported:
        raise UnsupportedOpsError(unsupported, framework=target_fw.name, path=str(source_path))

    tick = time.perf_counter()
    with atomic_output(
        target_path,
        force=force,
        directory=target_fw.writes_directory,
        is_own_output=target_fw.is_own_output,
    ) as temporary:
        try:
            _save(target_fw, model, temporary, target_path, convert_options)
        except BadInputError as error:
            # A backend's bad input is the model it was handed: the source, not the output.
            if error.path == str(target_path):
                error.path = str(source_path)
            raise
        except UnsupportedError as error:
            if isinstance(error, UnsupportedOpsError):
                raise  # ops the target lacks: the model is fine
            broken = _source_does_not_run(model, source_path, convert_options)
            if broken is not None:
                raise broken from error
            raise
    steps["export"] = time.perf_counter() - tick

    result = ConversionResult(
        ok=True,
        source=source_fw.name,
        target=target_fw.name,
        input=str(src),
        output=str(target_path),
        seconds=0.0,
        steps=steps,
        model=model,
    )
    if validate or locate or feeds is not None:
        tick = time.perf_counter()
        result.validation = _validate(
            source_fw,
            source_path,
            target_fw,
            target_path,
            convert_options,
            feeds,
            rtol,
            atol,
            source_model=model,
            locate=locate,
        )
        steps["validate"] = time.perf_counter() - tick
        result.ok = result.validation.ok
    result.seconds = time.perf_counter() - started
    return result


def _run_side(
    framework: Framework,
    path: Path,
    model: ir.Model,
    feeds: Mapping[str, np.ndarray],
    role: str,
) -> tuple[dict[str, np.ndarray], str]:
    """Runs one side of a validation natively where possible, else through the IR."""
    reason = framework.runtime_unavailable()
    if reason is None:
        names = [v.name or "" for v in model.graph.inputs if v.name not in model.graph.initializers]
        outputs = framework.run(path, align_feeds(names, feeds))
        output_names = [v.name or "" for v in model.graph.outputs]
        if set(outputs) != set(output_names) and len(outputs) == len(output_names):
            # A runtime that numbers its outputs (PyTorch) reports them under the IR's names.
            outputs = dict(zip(output_names, outputs.values(), strict=True))
        return outputs, f"{role} run by {framework.name}'s runtime"
    result = run_reference(model, feeds)
    return result.outputs, (
        f"{role} cannot run here ({reason}); imported back into the IR and run by {result.engine}"
    )


def _validate(
    source_fw: Framework,
    source_path: Path,
    target_fw: Framework,
    target_path: Path,
    options: ConvertOptions,
    feeds: Mapping[str, np.ndarray] | None,
    rtol: float,
    atol: float,
    *,
    source_model: ir.Model | None = None,
    locate: bool = False,
    locate_method: str = "auto",
) -> ValidationResult:
    started = time.perf_counter()
    if source_model is None:
        source_model = _load(source_fw, source_path, options)
    if feeds is None:
        feeds = example_inputs(list(source_model.graph.inputs), options.inputs)
    expected, how_ref = _run_side(source_fw, source_path, source_model, feeds, "the source")
    target_model = (
        source_model
        if target_fw.runtime_unavailable() is None
        else _load(target_fw, target_path, options)
    )
    actual, how_cand = _run_side(target_fw, target_path, target_model, feeds, "the converted model")
    report = compare_models(
        actual, expected, rtol=rtol, atol=atol, frameworks=(source_fw.name, target_fw.name)
    )
    result = ValidationResult(
        ok=report.ok,
        how=f"{how_ref}; {how_cand}",
        outputs=report.outputs,
        rtol=rtol,
        atol=atol,
        problems=report.problems,
        warnings=report.warnings,
        locate_requested=locate,
        expected=dict(expected),
        actual=dict(actual),
    )
    if locate and not report.ok:
        from unframe.converters.locate import locate as locate_divergence

        converted = None if locate_method == "bisection" else target_model
        try:
            if converted is source_model:
                converted = _load(target_fw, target_path, options)
            result.locate = locate_divergence(
                source_model,
                converted,
                target_fw,
                feeds,
                options=options,
                rtol=rtol,
                atol=atol,
                frameworks=(source_fw.name, target_fw.name),
                failing_outputs=[o.name for o in report.outputs if not o.ok],
                method=locate_method,
                converted_path=target_path,
            )
        except UnframeError as error:  # the validation stands; only the search failed
            result.locate = LocateResult(
                found=False, method=locate_method, how="the search failed", note=str(error)
            )
    result.seconds = time.perf_counter() - started
    return result


def validate(
    reference: Path | str,
    candidate: Path | str,
    source: str | None = None,
    target: str | None = None,
    *,
    inputs: InputsArg = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    locate: bool = False,
    locate_method: str = "auto",
    **options: Any,
) -> ValidationResult:
    """Runs ``reference`` and ``candidate`` on the same seeded inputs and compares every output.

    With ``locate``, where outputs differ, the result's ``locate`` names the first node of
    ``reference`` that diverges (``converters.locate``: by names, else by bisection;
    ``locate_method`` forces ``"names"`` or ``"bisection"``).
    """
    reference_path = _source_path(reference)
    candidate_path = _source_path(candidate)
    source_fw = _framework(source, reference, for_writing=False)
    target_fw = _framework(target, candidate, for_writing=False)
    convert_options = _options(None, inputs, options.pop("dynamic", None), options)
    return _validate(
        source_fw,
        reference_path,
        target_fw,
        candidate_path,
        convert_options,
        feeds,
        rtol,
        atol,
        locate=locate,
        locate_method=locate_method,
    )


def roundtrip(
    src: Path | str,
    via: str,
    source: str | None = None,
    *,
    inputs: InputsArg = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    **options: Any,
) -> RoundtripResult:
    """SRC -> IR -> VIA -> IR; both IRs run by the reference runner on the same inputs."""
    import tempfile

    started = time.perf_counter()
    source_path = _source_path(src)
    source_fw = _framework(source, src, for_writing=False)
    via_fw = _framework(via, "", for_writing=True)
    convert_options = _options(None, inputs, options.pop("dynamic", None), options)
    before = _load(source_fw, source_path, convert_options)
    before = passes.optimize(before, reload=lambda: _load(source_fw, source_path, convert_options))
    unsupported = via_fw.unsupported_nodes(before)
    if unsupported:
        raise UnsupportedOpsError(unsupported, framework=via_fw.name, path=str(source_path))
    feeds = example_inputs(list(before.graph.inputs), convert_options.inputs)
    expected = run_reference(before, feeds)
    with tempfile.TemporaryDirectory(prefix="unframe-roundtrip-") as tmp:
        suffix = via_fw.writes[0] if via_fw.writes else ""
        middle = Path(tmp) / f"model{suffix}"
        if via_fw.writes_directory:
            middle.mkdir()
        _save(via_fw, before, middle, middle, convert_options)
        after = _load(via_fw, middle, convert_options)
        names = [v.name or "" for v in after.graph.inputs if v.name not in after.graph.initializers]
        actual = run_reference(after, align_feeds(names, feeds))
    report = compare_models(
        actual.outputs,
        expected.outputs,
        rtol=rtol,
        atol=atol,
        frameworks=(source_fw.name, via_fw.name),
    )
    return RoundtripResult(
        ok=report.ok,
        via=via_fw.name,
        how=f"both IRs run by {expected.engine} / {actual.engine}",
        outputs=report.outputs,
        before=model_summary(before),
        after=model_summary(after),
        seconds=time.perf_counter() - started,
        problems=report.problems,
        warnings=report.warnings,
    )


@dataclass
class RunOutcome:
    """Outputs of one model run and how they were computed."""

    outputs: dict[str, np.ndarray]
    how: str
    feeds: dict[str, np.ndarray]


def run(
    model: Path | str,
    framework: str | None = None,
    *,
    inputs: InputsArg = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    **options: Any,
) -> RunOutcome:
    """Runs a native model on its framework's runtime (through the IR where it cannot run here)."""
    path = _source_path(model)
    adapter = _framework(framework, model, for_writing=False)
    convert_options = _options(None, inputs, options.pop("dynamic", None), options)
    declared = adapter.declared_inputs(path) if adapter.runtime_unavailable() is None else None
    if declared is not None:
        # The file says what it takes: run it without importing it (the IR may not hold it).
        if feeds is None:
            feeds = example_inputs(declared, convert_options.inputs, seed)
        names = [value.name or "" for value in declared]
        outputs = adapter.run(path, align_feeds(names, feeds))
        return RunOutcome(outputs, f"the model run by {adapter.name}'s runtime", dict(feeds))
    ir_model = _load(adapter, path, convert_options)
    if feeds is None:
        feeds = example_inputs(list(ir_model.graph.inputs), convert_options.inputs, seed)
    outputs, how = _run_side(adapter, path, ir_model, feeds, "the model")
    return RunOutcome(outputs, how, dict(feeds))
