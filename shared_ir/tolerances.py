"""Default tolerances of every numerical comparison, in a module without heavy imports.

The CLI reads them to show its defaults in ``--help``; keeping them apart from ``compare`` (which
imports numpy) keeps ``unframe --help`` fast.
"""

from __future__ import annotations

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5
