"""scripts/framework_table.py --matrix: the README's measured table; scripts/matrix_models.py's models.

Oracles: a matrix payload written here by hand (the table's figures counted by hand), and
onnxruntime running the models the script builds (with the weights the script seeds).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(src: str, source: str, to: str, ok: bool, max_abs: float | None, **extra: object) -> dict:
    return {"src": src, "from": source, "to": to, "ok": ok, "max_abs": max_abs,
            "seconds": 1.5, "error": None, "locate": None, **extra}  # fmt: skip


PAYLOAD = {
    "ok": False,
    "cells": [
        _cell("a.onnx", "onnx", "onnx", True, 0.0),
        _cell("a.onnx", "onnx", "coreml", True, 2e-6),
        _cell("b.onnx", "onnx", "onnx", True, 1e-7),
        _cell("b.onnx", "onnx", "coreml", False, None, error="exit 3: coreml cannot export Foo"),
        _cell(
            "c.pt2",
            "pytorch",
            "onnx",
            False,
            0.5,
            error="exit 1: outputs differ",
            locate={"found": True, "node": "fc2", "op": "Gemm"},
        ),  # fmt: skip
        _cell("c.pt2", "pytorch", "coreml", True, 3e-6),
    ],
}


def test_the_matrix_table_counts_each_pair_and_lists_each_failure(tmp_path):
    payload = tmp_path / "matrix.json"
    payload.write_text(json.dumps({**PAYLOAD, "made_by": {"b.onnx": "made by hand"}}))

    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "framework_table.py"), "--matrix",
         "--from-json", str(payload)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip

    assert printed[0] == "| from \\ to | onnx | coreml (re-imported, not run) |"
    assert (
        printed[2]
        == "| **onnx** (2 models) | ✅ 2/2, max err 1e-07, 3 s | ⚠️ 1/2, max err 2e-06, 3 s |"
    )
    assert (
        printed[3]
        == "| **pytorch** (1 model) | ❌ 0/1, max err 0.5, 2 s | ✅ 1/1, max err 3e-06, 2 s |"
    )
    assert "- b.onnx → coreml: exit 3: coreml cannot export Foo" in printed
    assert "- c.pt2 → onnx: exit 1: outputs differ (first diverging layer: fc2, Gemm)" in printed
    assert "- b.onnx: made by hand" in printed
    assert any(line.startswith("- coreml: ") and "re-imported" in line for line in printed)


def test_the_small_onnx_models_are_deterministic_and_run(tmp_path):
    models = _script("matrix_models")
    for make in (models.onnx_mlp, models.onnx_cnn, models.onnx_transformer):
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "b").mkdir(exist_ok=True)
        first = make(tmp_path / "a" / f"{make.__name__}.onnx")
        again = make(tmp_path / "b" / f"{make.__name__}.onnx")
        assert first.read_bytes() == again.read_bytes()
        model = onnx.load(first)
        onnx.checker.check_model(model, full_check=True)
        session = ort.InferenceSession(str(first), providers=["CPUExecutionProvider"])
        feed = {
            i.name: np.random.default_rng(0)
            .standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32)
            for i in model.graph.input
        }
        (output,) = session.run(None, feed)
        assert np.isfinite(output).all() and output.std() > 0  # not a constant, not NaN
