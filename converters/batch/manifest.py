"""Reading a batch manifest (YAML, JSON or CSV) into the list of jobs it stands for.

A YAML or JSON manifest is either a list of jobs or a mapping with ``jobs`` and optional
``defaults`` that every job starts from::

    defaults: {to: [caffe2, pytorch], out: "converted/{stem}.{ext}", validate: true}
    jobs:
      - src: "models/*.onnx"          # a glob: one job per match, in sorted order
      - {src: net.pt2, to: onnx, out: net.onnx, inputs: ["x=1,3,224,224"]}

A job's keys: ``src`` (required), ``to`` (required; a list gives one job per target), ``out``
(required; may be a template), ``from``, ``opset``, ``inputs`` (``NAME=D1,D2,...[:DTYPE]``, one
string or a list), ``validate``, ``rtol``, ``atol`` and ``force`` (replace an output that exists).

A CSV manifest has a header row with those same columns (``src`` and ``to`` at least); an empty
cell leaves the key unset, and ``to`` and ``inputs`` take several values separated by ``;``.

``out`` templates, filled per job with Python's ``str.format``:

- ``{stem}``: the source's name without its last suffix (``resnet`` for ``models/resnet.onnx``);
- ``{name}``: the source's name (``resnet.onnx``);
- ``{parent}``: the name of the source's folder (``models``);
- ``{to}``: the target framework (``caffe2``);
- ``{ext}``: the target framework's file suffix without the dot (``caffe2``, ``pt2``, ``onnx``).

Relative ``src`` and ``out`` paths are relative to the manifest's folder. A manifest that cannot
be read, or a job that makes no sense (an unknown key, a glob that matches nothing, two jobs
writing one output...), raises one ``ManifestError`` (exit 2) naming the manifest and the job's
index; a source that merely does not exist is left to fail as its own job.
"""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unframe.converters.batch.jobs import Job
from unframe.shared_ir.errors import BadInputError, FrameworkNotInstalledError

#: The keys a job (or ``defaults``) may have; ``from`` is ``Job.source``.
JOB_KEYS = ("src", "from", "to", "out", "opset", "inputs", "validate", "rtol", "atol", "force")
TEMPLATE_FIELDS = ("stem", "name", "parent", "to", "ext")
_GLOB_CHARACTERS = set("*?[")
_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off", ""}


class ManifestError(BadInputError):
    """A manifest that cannot be read or a job in it that makes no sense (exit 2)."""


def load_manifest(path: Path | str) -> list[Job]:
    """The jobs ``path`` lists, after defaults, target lists, globs and ``out`` templates."""
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError("no such manifest", path=str(manifest)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"cannot read the manifest: {error}", path=str(manifest)) from None
    suffix = manifest.suffix.lower()
    if suffix == ".csv":
        defaults: Mapping[str, Any] = {}
        entries: Sequence[Mapping[str, Any]] = _csv_entries(text, manifest)
    else:
        defaults, entries = _structured_entries(_parse_structured(text, manifest, suffix), manifest)
    return expand_jobs(entries, defaults, base=manifest.parent, manifest=str(manifest))


def expand_jobs(
    entries: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    *,
    base: Path | str = ".",
    manifest: str = "manifest",
) -> list[Job]:
    """Jobs from manifest entries (mappings of ``JOB_KEYS``), relative paths taken from ``base``.

    ``manifest`` names the manifest in errors; job indexes in errors count from 0, as listed.
    """
    defaults = dict(defaults or {})
    _check_keys(defaults, manifest, "defaults")
    jobs: list[Job] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"job {index}"
        if not isinstance(entry, Mapping):
            raise ManifestError(
                f"{where}: is a {type(entry).__name__}, not a mapping of keys", path=manifest
            )
        _check_keys(entry, manifest, where)
        merged = {**defaults, **{k: v for k, v in entry.items() if v is not None}}
        for job in _jobs_of(merged, Path(base), manifest, where):
            if job.out in first_index:
                raise ManifestError(
                    f"{where}: writes {job.out}, as job {first_index[job.out]} does",
                    path=manifest,
                    hint="give each job its own out (a template such as {stem}.{ext})",
                )
            first_index[job.out] = index
            jobs.append(job)
    return jobs


# -- reading the file -------------------------------------------------------------------------


def _parse_structured(text: str, manifest: Path, suffix: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ManifestError(f"not valid JSON: {error}", path=str(manifest)) from None
    import yaml

    try:
        # safe_load builds only plain data: a manifest never constructs Python objects.
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ManifestError(f"not valid YAML: {detail}", path=str(manifest)) from None


def _structured_entries(
    data: Any, manifest: Path
) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
    if isinstance(data, list):
        return {}, data
    if not isinstance(data, Mapping):
        raise ManifestError(
            "is neither a list of jobs nor a mapping with 'jobs' (and 'defaults')",
            path=str(manifest),
        )
    unknown = sorted(set(data) - {"jobs", "defaults"})
    if unknown:
        raise ManifestError(
            f"unknown top-level key(s): {', '.join(map(str, unknown))}",
            path=str(manifest),
            hint="a manifest has 'jobs' and optional 'defaults'",
        )
    jobs = data.get("jobs")
    defaults = data.get("defaults") or {}
    if not isinstance(jobs, list) or not jobs:
        raise ManifestError("'jobs' must be a non-empty list", path=str(manifest))
    if not isinstance(defaults, Mapping):
        raise ManifestError("'defaults' must be a mapping of job keys", path=str(manifest))
    return defaults, jobs


def _csv_entries(text: str, manifest: Path) -> list[dict[str, Any]]:
    rows = list(csv.reader(text.splitlines()))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ManifestError("needs a header row and at least one job row", path=str(manifest))
    header = [cell.strip() for cell in rows[0]]
    unknown = [column for column in header if column not in JOB_KEYS]
    if unknown:
        raise ManifestError(
            f"unknown column(s): {', '.join(unknown)}",
            path=str(manifest),
            hint=f"columns are {', '.join(JOB_KEYS)}",
        )
    entries = []
    for index, row in enumerate(rows[1:]):
        if len(row) > len(header):
            raise ManifestError(
                f"job {index}: has {len(row)} cells for {len(header)} columns", path=str(manifest)
            )
        entry: dict[str, Any] = {}
        for column, cell in zip(header, row, strict=False):
            value = cell.strip()
            if not value:
                continue
            entry[column] = _split(value) if column in ("to", "inputs") else value
        entries.append(entry)
    return entries


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


# -- one entry into jobs ----------------------------------------------------------------------


def _check_keys(entry: Mapping[str, Any], manifest: str, where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in JOB_KEYS)
    if unknown:
        raise ManifestError(
            f"{where}: unknown key(s) {', '.join(unknown)}",
            path=manifest,
            hint=f"a job's keys are {', '.join(JOB_KEYS)}",
        )


def _jobs_of(entry: Mapping[str, Any], base: Path, manifest: str, where: str) -> list[Job]:
    def fail(message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(f"{where}: {message}", path=manifest, hint=hint)

    for key in ("src", "to", "out"):
        if key not in entry:
            raise fail(f"has no '{key}' (and no default for it)")
    src = entry["src"]
    if not isinstance(src, str) or not src.strip():
        raise fail("'src' must be a path or a glob")
    targets = entry["to"] if isinstance(entry["to"], list) else [entry["to"]]
    if not targets or not all(isinstance(t, str) and t.strip() for t in targets):
        raise fail("'to' must be a framework name or a list of them")
    out = entry["out"]
    if not isinstance(out, str) or not out.strip():
        raise fail("'out' must be a path or a template")
    source = entry.get("from")
    if source is not None and not isinstance(source, str):
        raise fail("'from' must be a framework name")
    options: dict[str, Any] = {
        "source": source.lower() if source else None,
        "opset": _integer(entry.get("opset"), "opset", fail),
        "inputs": _inputs(entry.get("inputs"), fail),
        "validate": _flag(entry.get("validate", False), "validate", fail),
        "rtol": _number(entry.get("rtol"), "rtol", fail),
        "atol": _number(entry.get("atol"), "atol", fail),
        "force": _flag(entry.get("force", False), "force", fail),
    }
    sources = _sources(src, base, fail)
    jobs = []
    for source_path in sources:
        for target in targets:
            target_name = target.strip().lower()
            fields = _template_fields(source_path, target_name, fail)
            try:
                filled = out.format(**fields)
            except (KeyError, IndexError, ValueError) as error:
                raise fail(
                    f"'out' template {out!r} is not valid ({error})",
                    hint=f"placeholders are {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}",
                ) from None
            if len(sources) > 1 and filled == out and len(targets) == 1:
                raise fail(
                    f"'src' {src!r} matches {len(sources)} files but 'out' {out!r} names one",
                    hint="use a template such as converted/{stem}.{ext}",
                )
            jobs.append(
                Job(
                    src=str(source_path),
                    to=target_name,
                    out=str(_absolute(filled, base)),
                    **options,
                )
            )
    return jobs


def _absolute(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _sources(src: str, base: Path, fail: Any) -> list[Path]:
    if not _GLOB_CHARACTERS & set(src):
        return [_absolute(src, base)]
    pattern = str(_absolute(src, base))
    matches = sorted(Path(match) for match in glob.glob(pattern, recursive=True))
    if not matches:
        raise fail(f"'src' glob {src!r} matches no file", hint=f"looked for {pattern}")
    return matches


def _template_fields(source: Path, target: str, fail: Any) -> dict[str, str]:
    fields = {
        "stem": source.stem,
        "name": source.name,
        "parent": source.parent.name,
        "to": target,
        "ext": _extension(target, fail),  # also checks the name when no template uses it
    }
    return fields


def _extension(target: str, fail: Any) -> str:
    from unframe.converters.registry import get_framework

    try:
        framework = get_framework(target)
    except FrameworkNotInstalledError:
        return target  # fails as its own job with exit 4, naming the extra to install
    except BadInputError as error:
        raise fail(f"'to': {error}") from None
    return framework.writes[0].lstrip(".") if framework.writes else target


def _integer(value: Any, key: str, fail: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(f"'{key}' must be an integer, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(f"'{key}' must be an integer, not {value!r}") from None
    if isinstance(value, float) and value != number:
        raise fail(f"'{key}' must be an integer, not {value!r}")
    return number


def _number(value: Any, key: str, fail: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(f"'{key}' must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise fail(f"'{key}' must be a number, not {value!r}") from None
    if not number >= 0:
        raise fail(f"'{key}' must be a number >= 0, not {value!r}")
    return number


def _flag(value: Any, key: str, fail: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise fail(f"'{key}' must be true or false, not {value!r}")


def _inputs(value: Any, fail: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise fail("'inputs' must be a string NAME=D1,D2,...[:DTYPE] or a list of them")
    from unframe.shared_ir.inputs import parse_input_specs

    try:
        parse_input_specs(list(values))
    except BadInputError as error:
        raise fail(f"'inputs': {error}") from None
    return tuple(values)
