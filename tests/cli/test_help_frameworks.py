"""The help of every command taking ``--from``/``--to`` names every framework unframe ships."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from click.testing import CliRunner

from unframe.cli.main import cli
from unframe.converters.registry import ENTRY_POINT_GROUP


def _shipped_frameworks() -> list[str]:
    """The adapters unframe's own pyproject registers (a plugin's are listed by `frameworks`)."""
    group = entry_points(group=ENTRY_POINT_GROUP)
    return [ep.name for ep in group if ep.value.startswith("unframe.")]


@pytest.mark.parametrize("command", ["convert", "roundtrip", "validate"])
def test_from_option_lists_every_shipped_framework(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=1000)
    assert result.exit_code == 0, result.output
    (from_line,) = [line for line in result.output.splitlines() if "--from" in line]
    shipped = _shipped_frameworks()
    assert {"tensorflow", "tflite", "coreml"} <= set(shipped)
    listed = from_line.replace(",", " ").split()
    assert not [name for name in shipped if name not in listed], from_line
