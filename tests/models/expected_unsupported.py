"""The models a backend is expected to refuse today, and exactly which op types it refuses.

One line per (model, framework): the op types the conversion must list in its
``UnsupportedOpsError``, and why. The model tests never skip a model for want of converters;
they call ``convert_or_expect_refusal``, which fails when this table goes stale:

- a model listed here that now converts: delete its line (and the test then checks its numbers);
- a model listed here refused for other op types than its line names: correct the line;
- a model not listed here that is refused: add the converter, or a line saying why it cannot be.

Models are named ``<suite>/<name>``: ``torch_zoo/`` (tests/models/torch_zoo.py), ``onnx_light/``
(the ``light_*.onnx`` models shipped inside onnx) and ``transformers/`` (tiny BERT and GPT-2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

import pytest

from unframe.shared_ir.errors import UnsupportedOpsError

T = TypeVar("T")


class Refusal(NamedTuple):
    """The op types (``domain::Op`` outside the default domain) a conversion refuses, and why."""

    ops: frozenset[str]
    reason: str


#: The suites a model's name may start with.
SUITES = ("torch_zoo", "onnx_light", "transformers")

#: (model, framework) -> the refusal expected. Empty while every model converts on every backend.
EXPECTED_UNSUPPORTED: dict[tuple[str, str], Refusal] = {}

_TABLE = "tests/models/expected_unsupported.py"


def convert_or_expect_refusal(model: str, framework: str, convert: Callable[[], T]) -> T | None:
    """Runs ``convert``; returns its result, or ``None`` after the refusal this table expects.

    Fails the test when ``model`` is listed but converts, is refused for other op types than
    listed, or is refused without being listed.
    """
    expected = EXPECTED_UNSUPPORTED.get((model, framework))
    try:
        result = convert()
    except UnsupportedOpsError as error:
        refused = frozenset(op.qualified_type for op in error.ops)
        if expected is None:
            pytest.fail(
                f"{framework} refuses {model} ({', '.join(sorted(refused))}), which {_TABLE} does "
                f"not expect: add the converters, or a line there saying why not\n{error}"
            )
        assert refused == expected.ops, (
            f"{framework} refuses {model} for {sorted(refused)}, {_TABLE} says "
            f"{sorted(expected.ops)}: correct its line"
        )
        return None
    if expected is not None:
        pytest.fail(
            f"{framework} now converts {model}, which {_TABLE} expects refused for "
            f"{', '.join(sorted(expected.ops))}: delete its line"
        )
    return result


def unknown_models(suite: str, names: Iterable[str]) -> list[str]:
    """The table's models of ``suite`` (``torch_zoo`` ...) that are not among ``names``."""
    known = {f"{suite}/{name}" for name in names}
    listed = (model for model, _ in EXPECTED_UNSUPPORTED if model.startswith(f"{suite}/"))
    return sorted(model for model in listed if model not in known)


def misspelt_lines(frameworks: Iterable[str]) -> list[tuple[str, str]]:
    """Lines whose suite is not in ``SUITES`` or whose framework is none of ``frameworks``.

    Such a line would never be looked up, so it could never go stale.
    """
    prefixes = tuple(f"{suite}/" for suite in SUITES)
    known = set(frameworks)
    return sorted(
        key
        for key in EXPECTED_UNSUPPORTED
        if not key[0].startswith(prefixes) or key[1] not in known
    )
