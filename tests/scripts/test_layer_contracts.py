"""The layer contract of `make lint` catches what it forbids, on a small package laid out as ours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CONFIG = """
[importlinter]
root_package = toypkg
contract_types =
    native_layer: layer_contracts.NativeLayerContract

[importlinter:contract:native]
name = native layer only
type = native_layer
frontends = toypkg.frontends
backends = toypkg.backends
"""


def _package(root: Path, frontend_imports: str) -> None:
    files = {
        "toypkg/__init__.py": "",
        "toypkg/frontends/__init__.py": "",
        "toypkg/frontends/fw/__init__.py": "",
        "toypkg/frontends/fw/reader.py": frontend_imports,
        "toypkg/backends/__init__.py": "",
        "toypkg/backends/fw/__init__.py": "",
        "toypkg/backends/fw/native/__init__.py": "FORMAT = 1\n",
        "toypkg/backends/fw/driver.py": "DRIVER = 1\n",
        "toypkg/backends/other/__init__.py": "",
        "toypkg/backends/other/native/__init__.py": "FORMAT = 2\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ".importlinter").write_text(CONFIG)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(ROOT / "scripts")])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / ".importlinter")],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("imports", "kept"),
    [
        ("from toypkg.backends.fw.native import FORMAT\n", True),
        ("from toypkg.backends.fw.driver import DRIVER\n", False),
        ("from toypkg.backends.other.native import FORMAT\n", False),
    ],
)
def test_a_frontend_may_import_only_its_own_native_layer(tmp_path, imports, kept):
    _package(tmp_path, imports)
    result = _lint(tmp_path)
    assert (result.returncode == 0) is kept, result.stdout + result.stderr
    if not kept:
        assert "toypkg.frontends.fw.reader imports" in result.stdout
        assert "may import only toypkg.backends.fw.native" in result.stdout


def test_the_project_keeps_its_layer_contract():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    result = subprocess.run(
        [str(LINT_IMPORTS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
