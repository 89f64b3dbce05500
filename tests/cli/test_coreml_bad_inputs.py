"""Core ML bad inputs through the CLI: a directory that is not an mlpackage and a compiled
``.mlmodelc`` bundle exit 2 with one line naming the file and what is wrong, no traceback, and
nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from unframe.cli.main import cli

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _not_an_mlpackage(folder: Path) -> tuple[Path, list[str]]:
    source = folder / "model.mlpackage"
    source.mkdir()
    (source / "notes.txt").write_text("not a model")
    return source, []


def _compiled_bundle(folder: Path) -> tuple[Path, list[str]]:
    source = folder / "model.mlmodelc"
    source.mkdir()
    (source / "coremldata.bin").write_bytes(b"\0" * 16)
    return source, ["--from", "coreml"]  # a bundle's name does not say which framework wrote it


@pytest.mark.parametrize(
    ("make", "words"),
    [(_not_an_mlpackage, "not an mlpackage"), (_compiled_bundle, "compiled Core ML bundle")],
)
@pytest.mark.parametrize("output", ["out.onnx", "out.mlpackage"])
def test_bad_coreml_input_exits_2_in_one_line_writing_nothing(
    tmp_path: Path,
    make: Callable[[Path], tuple[Path, list[str]]],
    words: str,
    output: str,
) -> None:
    source, extra = make(tmp_path)
    target = tmp_path / "converted" / output
    target.parent.mkdir()
    result = CliRunner().invoke(
        cli, ["convert", str(source), "-o", str(target), *extra], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(source) in lines[0] and words in lines[0]
    assert list(target.parent.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["converted", source.name])
