"""Only an explicit factory runs the user's code: a colon in a path never imports ``./model.py``.

The planted ``model.py`` writes a marker file when imported; each command runs as the user would,
as a subprocess in the folder holding it, so an import from the working directory would show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

pytest.importorskip("torch", reason="the pytorch extra is not installed")

UNFRAME = Path(sys.executable).with_name("unframe")
PLANTED = """\
from pathlib import Path

Path(__file__).with_name("IMPORTED").write_text("model.py ran")

import torch


def x():
    return torch.nn.Linear(3, 2)


weights = x
"""


def _unframe(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UNFRAME), *args], cwd=folder, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(PLANTED)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "model.onnx:weights"),
        ("inspect", "model:x"),
        ("inspect", "model.x:weights"),
        ("convert", "model:x", "-o", "out.onnx", "--input", "input=1,3"),
        ("convert", "model.onnx:weights", "-o", "out.pt2"),
        ("validate", "model:x", "model.onnx:weights"),
        ("roundtrip", "model:x", "--via", "onnx"),
        ("run", "model:x", "-o", "out.npz"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_colon_path_is_a_missing_file_and_imports_nothing(
    planted: Path, args: tuple[str, ...]
) -> None:
    done = _unframe(planted, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unframe: error: "), done.stderr
    assert "no such file" in lines[0] and args[1] in lines[0], lines[0]
    assert not (planted / "IMPORTED").exists(), f"{args} imported ./model.py"
    assert sorted(p.name for p in planted.iterdir()) == ["model.py"]


def test_missing_old_form_factory_is_a_missing_file(planted: Path) -> None:
    done = _unframe(planted, "inspect", "absent.py:x")
    assert done.returncode == 2 and "absent.py:x: no such file" in done.stderr, done.stderr
    assert not (planted / "IMPORTED").exists()


@pytest.mark.parametrize("spec", ["py:model.py:x", "model.py:x", "py:model:x"])
def test_explicit_factory_runs_the_file(planted: Path, spec: str) -> None:
    """``py:`` (file or module) and the old ``file.py:f`` of an existing file still run it."""
    done = _unframe(planted, "convert", spec, "--input", "input=1,3", "-o", "out.onnx", "--json")
    assert done.returncode == 0, done.stderr
    assert (planted / "IMPORTED").read_text() == "model.py ran"
    model = onnx.load(planted / "out.onnx")
    # torch.nn.Linear(3, 2): a [1, 3] input, a [1, 2] output.
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 2]
