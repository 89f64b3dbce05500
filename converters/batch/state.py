"""What ``--resume`` knows: which outputs a batch already wrote, from which source and options.

Each output folder holds one small state file, ``.unframe-batch.json``, beside the outputs, mapping
an output's file name to the content hash of the job that wrote it: sha256 of the source (every
file of a directory source, with its relative path) and of the job's options and unframe's
version. It is rewritten atomically (a temporary file, then ``os.replace``) after each job, so a
batch stopped at any moment (Ctrl-C, a killed machine) loses at most the jobs that were running.

A job is skipped on resume when its output exists and its entry says it succeeded with the same
hash. A source's side files that the source names only from inside (an ONNX model's external
data in another folder) are not hashed: change the model file too, or delete the output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from unframe.converters.batch.jobs import Job, JobResult

STATE_NAME = ".unframe-batch.json"
_FORMAT = 1
_CHUNK = 1 << 20


def source_digest(src: str) -> str | None:
    """sha256 of a source file, or of a directory's files and relative paths; None if missing."""
    path = Path(src)
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(file.relative_to(path).as_posix().encode() + b"\0")
                _hash_file(file, digest)
        elif path.is_file():
            _hash_file(path, digest)
        else:
            return None
    except OSError:
        return None
    return digest.hexdigest()


def _hash_file(path: Path, digest: Any) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    digest.update(b"\0")


def job_key(job: Job, source_hash: str) -> str:
    """The hash that says a job's output is still current: its source's and its options'."""
    from unframe import __version__

    options = job.as_json()
    for name in ("src", "out", "force"):
        options.pop(name, None)
    text = json.dumps(
        {"source": source_hash, "options": options, "unframe": __version__}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


class BatchState:
    """The state files of a batch's output folders, read once and rewritten after each job."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, Any]] = {}
        self._source_hashes: dict[str, str | None] = {}
        self._keys: dict[Job, str | None] = {}

    def key(self, job: Job) -> str | None:
        """The job's current hash; None when its source cannot be read (it will fail anyway)."""
        if job not in self._keys:
            if job.src not in self._source_hashes:
                self._source_hashes[job.src] = source_digest(job.src)
            source_hash = self._source_hashes[job.src]
            self._keys[job] = None if source_hash is None else job_key(job, source_hash)
        return self._keys[job]

    def entry(self, job: Job) -> dict[str, Any] | None:
        """What the state file beside ``job.out`` says about it, if anything."""
        output = _output(job)
        entry = self._folder(output.parent).get(output.name)
        return entry if isinstance(entry, dict) else None

    def is_current(self, job: Job) -> bool:
        """The output exists and an earlier run wrote it, successfully, from this source and options."""
        entry = self.entry(job)
        key = self.key(job)
        return (
            entry is not None
            and key is not None
            and entry.get("ok") is True
            and entry.get("key") == key
            and os.path.lexists(_output(job))
        )

    def skipped_result(self, job: Job) -> JobResult:
        """The result of a job that resume skips: what its entry recorded."""
        entry = self.entry(job) or {}
        return JobResult(
            job=job,
            ok=True,
            skipped=True,
            validation=entry.get("validation"),
            details={"from": entry.get("from", job.source)},
        )

    def record(self, result: JobResult) -> None:
        """Notes a finished job whose output now exists; rewrites its folder's file atomically."""
        output = _output(result.job)
        key = self.key(result.job)
        if key is None or not os.path.lexists(output):
            return
        entries = self._folder(output.parent)
        entries[output.name] = {
            "key": key,
            "ok": result.ok,
            "src": result.job.src,
            "to": result.job.to,
            "from": result.details.get("from", result.job.source),
            "validation": result.validation,
        }
        _write_atomically(output.parent / STATE_NAME, {"format": _FORMAT, "outputs": entries})

    def _folder(self, folder: Path) -> dict[str, Any]:
        if folder not in self._folders:
            self._folders[folder] = _read(folder / STATE_NAME)
        return self._folders[folder]


def _output(job: Job) -> Path:
    return Path(os.path.abspath(job.out))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no state (or a damaged one): every job runs again
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {}
    outputs = data.get("outputs")
    return dict(outputs) if isinstance(outputs, dict) else {}


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
