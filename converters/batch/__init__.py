"""Batch conversion: many jobs from a manifest, run in isolated workers, resumable."""

from __future__ import annotations

from unframe.converters.batch.jobs import Executor, Job, JobResult, ProgressCallback

__all__ = ["Executor", "Job", "JobResult", "ProgressCallback"]
