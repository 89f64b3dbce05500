"""Seeded mutation fuzzing of unframe's importers, shared by the suite's fuzz tests and ``scripts/fuzz.py``.

A *case* is ``(importer, seed, number)``: its random generator is seeded from those three alone, so
any case is rebuilt exactly without running the others. A case copies the importer's valid seed
files, mutates one of them (bit flips, byte runs, truncation, chunk copies, or protobuf-, zip- or
text-aware edits), runs one CLI command in-process through ``click.testing.CliRunner`` and checks
what unframe promises for bad input:

- exit 2 or 3; exit 0 only where an independent oracle (onnxruntime and onnx's checker, Google's
  protobuf parser, torch's own loader) still takes the mutated file for a valid model; never 1, 4, 5
  or 6, never an exception escaping the CLI;
- on failure exactly one ``unframe: error:`` line naming the input, no traceback, nothing else on
  stderr but warnings and the per-node lines of an unsupported-ops error;
- nothing at ``-o`` after a failure and no ``*.unframe-tmp-*`` staging folder anywhere in the case;
- a per-case time bound and a bound on the growth of the process's peak RSS.

Layout: ``mutations`` (the mutators), ``cases`` (running and checking one case), ``seeds`` (the
valid models, one ``Importer`` per importer, and the exit-0 oracles).
"""

from __future__ import annotations

from fuzzing.cases import (
    CASE_RSS_GROWTH_MIB,
    CASE_SECONDS,
    CaseFiles,
    CaseResult,
    Importer,
    exit_histogram,
    failures,
    run_case,
    run_cases,
    warm_up,
    write_case,
)
from fuzzing.mutations import BYTES, PROTOBUF, TEXT, ZIP, mutate
from fuzzing.seeds import IMPORTERS, netdef_importer, onnx_importer, pbtxt_importer, pt2_importer

__all__ = [
    "BYTES",
    "CASE_RSS_GROWTH_MIB",
    "CASE_SECONDS",
    "IMPORTERS",
    "PROTOBUF",
    "TEXT",
    "ZIP",
    "CaseFiles",
    "CaseResult",
    "Importer",
    "exit_histogram",
    "failures",
    "mutate",
    "netdef_importer",
    "onnx_importer",
    "pbtxt_importer",
    "pt2_importer",
    "run_case",
    "run_cases",
    "warm_up",
    "write_case",
]
