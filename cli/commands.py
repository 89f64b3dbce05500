"""The CLI's commands; each parses options, calls ``unframe.converters`` and renders the result."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from unframe.cli import render
from unframe.cli.group import FRAMEWORK_HELP, cli
from unframe.cli.options import jobs_option, json_option, timeout_option
from unframe.shared_ir.errors import BadInputError, ExitCode, UnframeError
from unframe.shared_ir.tolerances import DEFAULT_ATOL, DEFAULT_RTOL

if TYPE_CHECKING:
    import numpy as np


class FrameworkName(click.ParamType):
    """A framework's name, checked against the registry when the option is parsed.

    The names are those of the ``unframe.frameworks`` entry points (a plugin's included) and the
    planned frameworks; listing them imports no adapter, so ``--help`` stays fast.
    """

    name = "framework"

    def choices(self) -> list[str]:
        from unframe.converters.registry import KNOWN_FRAMEWORKS, framework_names

        names = framework_names()
        return names + [name for name in KNOWN_FRAMEWORKS if name not in names]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        choices = self.choices()
        if str(value).lower() in choices:
            return str(value).lower()
        self.fail(f"{value!r} is not one of {', '.join(choices)}", param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return [CompletionItem(n) for n in self.choices() if n.startswith(incomplete.lower())]


FRAMEWORKS = FrameworkName()


def _input_option(function: Any) -> Any:
    return click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME=D1,D2,...[:DTYPE]",
        help="An input's shape (and dtype); repeat for several inputs. A dim LO..HI is dynamic "
        "within those bounds (Core ML's flexible shapes), e.g. x=1..32,3,224,224.",
    )(function)


def _dynamic_option(function: Any) -> Any:
    return click.option(
        "--dynamic",
        multiple=True,
        metavar="NAME=AXIS[,AXIS]",
        help="Keep these axes of an input dynamic (PyTorch sources).",
    )(function)


def _tolerances(function: Any) -> Any:
    function = click.option(
        "--atol", type=float, default=DEFAULT_ATOL, show_default=True, help="Absolute tolerance."
    )(function)
    return click.option(
        "--rtol",
        type=float,
        default=DEFAULT_RTOL,
        show_default=True,
        help="Relative tolerance: an element fails where |a-b| > atol + rtol*|b|.",
    )(function)


def _locate_option(function: Any) -> Any:
    return click.option(
        "--locate",
        is_flag=True,
        help="Where outputs differ, name the first node of SRC whose output differs "
        "(matched by value names, else by bisecting SRC's nodes).",
    )(function)


def _parse_dynamic(texts: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    dynamic: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, _, axes = text.partition("=")
        try:
            dynamic[name.strip()] = tuple(int(a) for a in axes.split(",") if a.strip())
        except ValueError:
            raise BadInputError(f"--dynamic {text!r} is not NAME=AXIS[,AXIS]") from None
        if not name.strip() or not dynamic[name.strip()]:
            raise BadInputError(f"--dynamic {text!r} is not NAME=AXIS[,AXIS]")
    return dynamic


def _load_npz(path: Path | None) -> dict[str, np.ndarray] | None:
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise BadInputError(f"not a readable .npz file ({error})", path=str(path)) from None


def _npz_arrays(
    outputs: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """``outputs`` as an ``.npz`` holds them, and the outputs widened (name -> (from, to)).

    numpy's format has no bfloat16, float8, float4 or int4: ``np.savez`` writes them as raw
    ``V`` bytes, or a descriptor (``<f1``) ``np.load`` refuses. Each becomes the numpy type that
    holds all its values exactly (float32, int8 or uint8).
    """
    arrays = {name: _exactly_widened(value) for name, value in outputs.items()}
    widened = {
        name: (value.dtype.name, arrays[name].dtype.name)
        for name, value in outputs.items()
        if arrays[name] is not value
    }
    return arrays, widened


def _exactly_widened(value: np.ndarray) -> np.ndarray:
    """``value`` itself, or in the numpy type holding its narrow type's values exactly."""
    wide = _EXACT_WIDENING.get(value.dtype.name)
    return value if wide is None else value.astype(wide)


#: ml_dtypes' narrow types -> the numpy type that holds every value of theirs exactly.
_EXACT_WIDENING = {
    **{
        name: "float32"
        for name in (
            "bfloat16",
            "float8_e4m3fn",
            "float8_e4m3fnuz",
            "float8_e5m2",
            "float8_e5m2fnuz",
            "float8_e4m3b11fnuz",
            "float8_e8m0fnu",
            "float4_e2m1fn",
        )
    },
    "int4": "int8",
    "int2": "int8",
    "uint4": "uint8",
    "uint2": "uint8",
}


def _mean(value: np.ndarray) -> float | None:
    import numpy as np

    if not value.size:
        return None
    value = _exactly_widened(value)
    if value.dtype.kind not in "fiub":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.mean(value))


#: Options only some frameworks read: the ``ConvertOptions.extra`` key, the CLI flag, which side
#: of the conversion reads it ("source" or "target") and the frameworks that do.
FRAMEWORK_OPTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "layout": ("--layout", "target", ("tensorflow", "tflite")),
    "signature": ("--signature", "source", ("tensorflow", "tflite")),
    "output_nodes": ("--output-node", "source", ("tensorflow",)),
    "precision": ("--precision", "target", ("coreml", "tflite")),
    "minimum_deployment_target": ("--minimum-deployment-target", "target", ("coreml",)),
}


def _framework_options(function: Any) -> Any:
    """The convert options that only some sources or targets read (see FRAMEWORK_OPTIONS)."""
    options = [
        click.option(
            "--layout",
            type=click.Choice(["onnx", "nhwc"]),
            help="TensorFlow/TFLite targets: 'nhwc' makes 4-D image inputs and outputs "
            "channels-last (as Keras takes images) with no boundary Transposes; "
            "'onnx' (default) keeps the ONNX graph's layout.",
        ),
        click.option(
            "--signature",
            metavar="NAME",
            help="TensorFlow SavedModel and .tflite sources: the signature to convert "
            "[default: serving_default].",
        ),
        click.option(
            "--output-node",
            "output_nodes",
            multiple=True,
            metavar="NAME",
            help="Frozen GraphDef (.pb) sources: an output node (repeatable; inputs come from "
            "--input) [default: every node nothing reads].",
        ),
        click.option(
            "--precision",
            type=click.Choice(["float32", "float16"]),
            help="Core ML/TFLite targets: the precision of weights and compute [default: float32].",
        ),
        click.option(
            "--minimum-deployment-target",
            metavar="TEXT",
            help="Core ML targets: the oldest OS the model must run on (e.g. iOS16, macOS13).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _refuse_ignored_options(
    extra: dict[str, Any], src: str, out: str, source: str | None, target: str | None
) -> None:
    """Exit 2 for an option the conversion's source or target would silently ignore."""
    if not extra:
        return
    from unframe.converters.registry import detect_framework

    resolved: dict[str, str | None] = {"source": source, "target": target}
    for key in extra:
        flag, side, readers = FRAMEWORK_OPTIONS[key]
        name = resolved[side]
        if name is None:
            try:
                path = src if side == "source" else out
                name = resolved[side] = detect_framework(path, for_writing=side == "target").name
            except UnframeError:
                return  # the conversion itself reports the path it cannot place
        if name not in readers:
            given = source if side == "source" else target
            choose = "--from" if side == "source" else "--to"
            raise BadInputError(
                f"{flag} applies only to a {' or '.join(readers)} {side}, "
                f"and this conversion's {side} is {name}"
                + ("" if given else " (detected from the path)"),
                hint=f"drop {flag}" + ("" if given else f", or pass {choose} {readers[0]}"),
            )


def _transposes_added(result: Any) -> int | None:
    """The Transposes a layout pass added (TensorFlow targets), which it notes on the IR."""
    from unframe.converters.adapters.tensorflow import TRANSPOSES_ADDED_KEY

    model = getattr(result, "model", None)
    text = None if model is None else model.metadata_props.get(TRANSPOSES_ADDED_KEY)
    return None if text is None else int(text)


def _renamed_io(result: Any) -> dict[str, str]:
    """Input/output names the target does not allow and what it calls them (Core ML targets)."""
    import json

    from unframe.converters.adapters.coreml import RENAMED_IO_KEY

    model = getattr(result, "model", None)
    text = None if model is None else model.metadata_props.get(RENAMED_IO_KEY)
    return {} if text is None else dict(json.loads(text))


@contextlib.contextmanager
def _status(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr for long work, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with render.stderr.status(message):
        yield


@cli.command()
@click.argument("src")
@click.option("-o", "--output", "out", required=True, help="Where to write the converted model.")
@click.option("--from", "source", type=FRAMEWORKS, help=f"Source framework: {FRAMEWORK_HELP}.")
@click.option("--to", "target", type=FRAMEWORKS, help=f"Target framework: {FRAMEWORK_HELP}.")
@click.option("--opset", type=int, help="ONNX opset to target (ONNX output).")
@_input_option
@_dynamic_option
@click.option(
    "--validate", is_flag=True, help="Run source and result on the same inputs and compare."
)
@_locate_option
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path),
    help="Validate on inputs from an .npz file (one array per model input, by name).",
)
@_tolerances
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option(
    "--no-optimize", is_flag=True, help="Skip constant folding and dead-code elimination."
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    help="Also write DIR/convert.html: both graphs, validation, error histograms (implies "
    "--validate).",
)
@_framework_options
@json_option
def convert(
    src: str,
    out: str,
    source: str | None,
    target: str | None,
    opset: int | None,
    inputs: tuple[str, ...],
    dynamic: tuple[str, ...],
    validate: bool,
    rtol: float,
    atol: float,
    force: bool,
    no_optimize: bool,
    locate: bool,
    inputs_file: Path | None,
    layout: str | None,
    signature: str | None,
    output_nodes: tuple[str, ...],
    precision: str | None,
    minimum_deployment_target: str | None,
    as_json: bool,
    report_dir: Path | None = None,
) -> None:
    """Convert SRC into another framework's format, written to OUT."""
    from unframe.converters import api

    extra: dict[str, Any] = {
        "layout": layout,
        "signature": signature,
        "output_nodes": list(output_nodes) or None,
        "precision": precision,
        "minimum_deployment_target": minimum_deployment_target,
    }
    extra = {key: value for key, value in extra.items() if value is not None}
    _refuse_ignored_options(extra, src, out, source, target)
    if report_dir is not None:
        from unframe.converters.report_html import check_report_folder

        check_report_folder(report_dir)
    with _status("converting", as_json), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = api.convert(
            src,
            out,
            source,
            target,
            opset=opset,
            inputs=list(inputs),
            dynamic=_parse_dynamic(dynamic),
            validate=validate or report_dir is not None,
            rtol=rtol,
            atol=atol,
            force=force,
            optimize=not no_optimize,
            feeds=_load_npz(inputs_file),
            locate=locate,
            **extra,
        )
    for caught_warning in caught:  # shown as they would have been, and kept for --json
        warnings.showwarning(
            caught_warning.message,
            caught_warning.category,
            caught_warning.filename,
            caught_warning.lineno,
        )
    if as_json:
        payload = result.as_json()
        payload["warnings"] = [str(w.message) for w in caught]
        added = _transposes_added(result)
        if added is not None:
            payload["transposes_added"] = added
        renamed = _renamed_io(result)
        if renamed:
            payload["renamed_io"] = renamed
        render.print_json(payload)
    else:
        render.stdout.print(
            f"{result.source} -> {result.target}: wrote {result.output} in {result.seconds:.2f} s"
        )
        if result.validation is not None:
            _print_validation(result.validation)
    if report_dir is not None:
        from unframe.converters.report_html import write_conversion_report

        page = write_conversion_report(result, report_dir)
        if not as_json:
            render.stdout.print(f"report: {page}")
    if not result.ok:
        sys.exit(int(ExitCode.MISMATCH))


def _print_locate(located: Any) -> None:
    """The first diverging node and its inputs' errors, as a table like validation's."""
    from rich.table import Table

    render.stdout.print(f"locate: {located.how}")
    if not located.found:
        render.stdout.print(f"[yellow]no diverging node found:[/yellow] {located.note}")
        return
    title = f"first diverging node: {located.node} ({located.op})"
    if located.converted_name and located.converted_name != located.output:
        title += f", {located.converted_name} in the converted model"
    table = Table(title=title, title_justify="left")
    for column in ("value", "role", "max abs err", "max rel err", "result"):
        table.add_column(column, justify="right" if "err" in column else "left")
    for item in located.inputs:
        verdict = "-" if not item.compared else ("pass" if item.ok else "[red]FAIL[/red]")
        numbers = [f"{item.max_abs:.3g}", f"{item.max_rel:.3g}"] if item.compared else ["-", "-"]
        table.add_row(item.name, f"input ({item.kind})", *numbers, verdict)
    figures = (f"{located.max_abs:.3g}", f"{located.max_rel:.3g}")
    table.add_row(located.output, "output", *figures, "[red]FAIL[/red]")
    render.stdout.print(table)
    render.stdout.print(f"[red]diverges at {located.node}:[/red] {located.note}")


def _print_validation(validation: Any) -> None:
    render.stdout.print(
        render.comparison_table(
            f"validation (rtol {validation.rtol:g}, atol {validation.atol:g})", validation.outputs
        )
    )
    render.stdout.print(f"how: {validation.how}")
    render.print_findings(validation.problems, validation.warnings)
    render.stdout.print(
        "[green]outputs match[/green]" if validation.ok else "[red]outputs differ[/red]"
    )
    if getattr(validation, "locate", None) is not None:
        _print_locate(validation.locate)


@cli.command()
@click.argument("src")
@click.argument("converted")
@click.option("--from", "source", type=FRAMEWORKS, help=f"SRC's framework: {FRAMEWORK_HELP}.")
@click.option("--to", "target", type=FRAMEWORKS, help=f"CONVERTED's framework: {FRAMEWORK_HELP}.")
@_input_option
@click.option(
    "--inputs", "inputs_file", type=click.Path(path_type=Path), help="Inputs from an .npz file."
)
@_tolerances
@_locate_option
@json_option
def validate(
    src: str,
    converted: str,
    source: str | None,
    target: str | None,
    inputs: tuple[str, ...],
    inputs_file: Path | None,
    rtol: float,
    atol: float,
    locate: bool,
    as_json: bool,
) -> None:
    """Run SRC and CONVERTED on the same seeded inputs and compare every output."""
    from unframe.converters import api

    with _status("validating", as_json):
        result = api.validate(
            src,
            converted,
            source,
            target,
            inputs=list(inputs),
            feeds=_load_npz(inputs_file),
            rtol=rtol,
            atol=atol,
            locate=locate,
        )
    if as_json:
        render.print_json(result.as_json())
    else:
        _print_validation(result)
    if not result.ok:
        sys.exit(int(ExitCode.MISMATCH))


@cli.command()
@click.argument("src")
@click.option("--via", required=True, type=FRAMEWORKS, help="The framework to go through.")
@click.option("--from", "source", type=FRAMEWORKS, help=f"SRC's framework: {FRAMEWORK_HELP}.")
@_input_option
@_tolerances
@json_option
def roundtrip(
    src: str,
    via: str,
    source: str | None,
    inputs: tuple[str, ...],
    rtol: float,
    atol: float,
    as_json: bool,
) -> None:
    """SRC -> IR -> VIA -> IR, then compare both IRs' outputs and graph statistics."""
    from unframe.converters import api

    with _status(f"round trip through {via}", as_json):
        result = api.roundtrip(src, via, source, inputs=list(inputs), rtol=rtol, atol=atol)
    if as_json:
        render.print_json(result.as_json())
    else:
        render.stdout.print(render.comparison_table(f"round trip via {result.via}", result.outputs))
        for key in ("nodes", "parameters", "parameter_bytes"):
            render.stdout.print(f"{key}: {result.before[key]} -> {result.after[key]}")
        render.stdout.print(f"how: {result.how}")
        render.print_findings(result.problems, result.warnings)
    if not result.ok:
        sys.exit(int(ExitCode.MISMATCH))


@cli.command()
@click.argument("src")
@click.option("--from", "source", type=FRAMEWORKS, help=f"SRC's framework: {FRAMEWORK_HELP}.")
@_input_option
@json_option
def inspect(src: str, source: str | None, inputs: tuple[str, ...], as_json: bool) -> None:
    """Show inputs, outputs, op histogram, parameter count and opset of SRC."""
    from unframe.converters import api
    from unframe.shared_ir.stats import model_summary

    summary = model_summary(api.load(src, source, inputs=list(inputs), inspect=True))
    if as_json:
        render.print_json(summary)
        return
    for role in ("inputs", "outputs"):
        render.stdout.print(f"{role}:")
        for value in summary[role]:
            render.stdout.print(f"  {value['name']}: {value['dtype']} {value['shape']}")
    render.stdout.print(f"opset: {summary['opset']}")
    render.stdout.print(
        f"parameters: {summary['parameters']:,} ({summary['parameter_bytes'] / 2**20:.1f} MiB)"
    )
    render.stdout.print(f"nodes: {summary['nodes']}")
    for op, count in summary["ops"].items():
        render.stdout.print(f"  {op}: {count}")


@cli.command()
@json_option
def frameworks(as_json: bool) -> None:
    """List the installed framework adapters and what each can do here."""
    from unframe.converters.registry import all_frameworks, broken_frameworks

    described = [fw.describe() for fw in all_frameworks()]
    for name, reason in broken_frameworks().items():
        described.append(
            {
                "name": name,
                "reads": [],
                "writes": [],
                "installed": False,
                "import": False,
                "export": False,
                "run": False,
                "runtime_note": reason,
                "extra": name,
            }
        )
    if as_json:
        render.print_json(described)
        return
    from rich.table import Table

    table = Table()
    for column in ("framework", "reads", "writes", "import", "export", "run here"):
        table.add_column(column)
    for d in described:
        run = "yes" if d["run"] else f"no ({d['runtime_note']})"
        table.add_row(
            d["name"],
            " ".join(d["reads"]),
            " ".join(d["writes"]),
            "yes" if d["import"] else f"no: pip install 'unframe[{d['extra']}]'",
            "yes" if d["export"] else "no",
            run,
        )
    render.stdout.print(table)


@cli.command()
@click.option("--backend", required=True, type=FRAMEWORKS, help="The backend to test.")
@click.option("--op", "ops", multiple=True, help="Only the tests of this op (repeatable).")
@click.option("--filter", "name_pattern", help="Only tests whose name matches this regex.")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help="Markdown report path [default: docs/conformance/BACKEND.md for a full run].",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each a fresh process per chunk of tests; a test whose framework "
    "kills its process fails alone).",
)
@json_option
def conformance(
    backend: str,
    ops: tuple[str, ...],
    name_pattern: str | None,
    report: Path | None,
    jobs: int,
    as_json: bool,
) -> None:
    """Run onnx's backend node tests through BACKEND's exporter and runtime."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from unframe.converters import conformance as harness
    from unframe.converters.registry import get_framework

    framework = get_framework(backend)
    framework.ensure_installed()
    cases = harness.collect_node_tests(list(ops) or None, name_pattern)
    if not cases:
        raise BadInputError("no node test matches", hint="check --op and --filter")
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=render.stderr,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task(f"conformance {backend}", total=len(cases))
        if jobs > 1:
            from unframe.converters.conformance_isolated import run_isolated

            tests = [(case.name, harness.node_test_op(case)) for case in cases]
            outcomes = run_isolated(
                framework.name, tests, jobs, lambda done: progress.advance(task, done)
            )
            result = harness.ConformanceReport(framework.name, outcomes)
        else:
            result = harness.run_conformance(framework, cases, lambda _: progress.advance(task))
    if report is None and not ops and not name_pattern:
        report = Path("docs/conformance") / f"{framework.name}.md"
    if report is not None:
        harness.write_report(result, report, framework)
    if as_json:
        render.print_json({"backend": framework.name, **result.as_json()})
        return
    render.stdout.print(f"supported ops (every test passes): {len(result.supported_ops())}")
    if report is not None:
        render.stdout.print(f"report: {report}")
    render.stdout.print(result.summary_line())


@cli.command()
@click.argument("model")
@click.option("--from", "source", type=FRAMEWORKS, help=f"MODEL's framework: {FRAMEWORK_HELP}.")
@_input_option
@click.option(
    "--inputs", "inputs_file", type=click.Path(path_type=Path), help="Inputs from an .npz file."
)
@click.option(
    "-o", "--output", "out", type=click.Path(path_type=Path), help="Save outputs to an .npz file."
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@json_option
def run(
    model: str,
    source: str | None,
    inputs: tuple[str, ...],
    inputs_file: Path | None,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Run MODEL on its framework's runtime (seeded inputs unless --inputs) and summarize outputs."""
    import numpy as np

    from unframe.converters import api

    result = api.run(model, source, inputs=list(inputs), feeds=_load_npz(inputs_file))
    if out is not None:
        from unframe.shared_ir.io import atomic_output

        arrays, widened = _npz_arrays(result.outputs)
        with atomic_output(out, force=force) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        for name, (narrow, wide) in widened.items():
            click.echo(
                f"unframe: note: {out}: output {name} ({narrow}) written as {wide}, the same "
                f"values: .npz has no {narrow}",
                err=True,
            )
    summary = [
        {
            "name": name,
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "mean": _mean(value),
        }
        for name, value in result.outputs.items()
    ]
    if as_json:
        render.print_json({"ok": True, "how": result.how, "outputs": summary})
        return
    render.stdout.print(f"how: {result.how}")
    for item in summary:
        render.stdout.print(f"{item['name']}: {item['dtype']} {item['shape']} mean={item['mean']}")


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@jobs_option("job")
@timeout_option("job", "fails (exit 6)")
@click.option(
    "--resume",
    is_flag=True,
    help="Skip jobs whose output an earlier run wrote from the same source and options.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help="Also write DIR/batch.json (as --json prints) and an HTML page with the table.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where jobs run: a process pool here, or Ray tasks (pip install 'unframe[ray]').",
)
@click.option("--address", help="The Ray cluster to join (--executor ray) [default: a local Ray].")
@json_option
def batch(
    manifest: Path,
    workers: int | None,
    timeout: float | None,
    resume: bool,
    report: Path | None,
    executor: str,
    address: str | None,
    as_json: bool,
) -> None:
    """Run every conversion a MANIFEST (YAML, JSON or CSV) lists, in parallel, each isolated.

    A job that fails, crashes its worker or hangs past --timeout fails alone; the others go on.
    Exit 0 only if every job succeeded (and validated where asked), 1 otherwise.
    """
    from unframe.cli.batch_view import BatchProgress, results_table, summary_line
    from unframe.converters.batch import batch as run_batch
    from unframe.converters.batch import make_executor
    from unframe.converters.batch.manifest import load_manifest

    jobs = load_manifest(manifest)
    engine = make_executor(executor, address=address)
    progress = BatchProgress(len(jobs), quiet=as_json)
    try:
        with progress:
            results = run_batch(
                jobs,
                jobs=workers,
                executor=engine,
                timeout=timeout,
                resume=resume,
                on_progress=progress,
            )
    except KeyboardInterrupt:
        click.echo(
            f"unframe: interrupted after {progress.done} of {len(jobs)} job(s); the workers were "
            f"stopped and finished outputs kept. Resume with: unframe batch {manifest} --resume",
            err=True,
        )
        sys.exit(130)
    payload = {"ok": all(r.ok for r in results), "jobs": [r.as_json() for r in results]}
    if report is not None:
        _write_batch_report(payload, results, report)
    if as_json:
        render.print_json(payload)
    else:
        render.stdout.print(results_table(results))
        render.stdout.print(summary_line(results))
        if report is not None:
            render.stdout.print(f"report: {report}")
    if not payload["ok"]:
        sys.exit(int(ExitCode.MISMATCH))


def _write_batch_report(payload: dict[str, Any], results: list[Any], folder: Path) -> None:
    import json
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".batch.json.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, folder / "batch.json")
    except OSError as error:
        raise BadInputError(
            f"cannot write the report: {error.strerror}", path=str(folder)
        ) from None
    try:
        from unframe.converters.batch.report import write_html
    except ImportError:  # the page is an addition; the JSON is the report
        return
    write_html(results, folder)
