"""load_op_modules: every public module of an ops package is imported, helpers only by their users."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from unframe.shared_ir.op_registry import load_op_modules


def test_public_modules_are_imported_in_name_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "toy_ops_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("LOADED = []\n")
    for name in ("math", "_helpers", "nn"):
        (package / f"{name}.py").write_text(
            f"from toy_ops_pkg import LOADED\nLOADED.append({name!r})\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_op_modules("toy_ops_pkg") == ["math", "nn"]
        assert sys.modules["toy_ops_pkg"].LOADED == ["math", "nn"]
        assert "toy_ops_pkg._helpers" not in sys.modules
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "toy_ops_pkg"]:
            del sys.modules[name]
