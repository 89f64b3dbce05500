"""onnx_ir imported through unframe leaves sympy unimported until a symbolic dimension needs it.

Each case runs in a fresh interpreter: this test process may have imported sympy already (torch
does), and the deferral applies only to an interpreter's first import of onnx_ir. Expected values
are computed by hand.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _run(code: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_symbolic_arithmetic_imports_sympy_on_first_use_and_computes() -> None:
    out = _run(
        """
        import sys, types
        import unframe
        import onnx_ir as ir
        from unframe.shared_ir.lazy_imports import is_deferred

        assert "sympy" not in sys.modules, "imported with onnx_ir"
        assert is_deferred(ir._core.sympy)
        dim = ir.Shape(["batch", 3])[0]
        assert dim == "batch" and "sympy" not in sys.modules  # naming a dim needs no sympy

        plus_one = ir.SymbolicDim("N") + 1
        assert "sympy" in sys.modules and type(sys.modules["sympy"]) is types.ModuleType
        assert plus_one.value == "N + 1", plus_one.value
        assert plus_one.evaluate({"N": 128}) == 129
        twice_max = ir.SymbolicDim("max(a, b)") * 2
        assert twice_max.evaluate({"a": 3, "b": 5}) == 10
        assert (ir.SymbolicDim("seq") // 2).evaluate({"seq": 9}) == 4

        # A sympy expression made by others is the same sympy's: onnx_ir takes it as its own.
        import sympy
        assert sys.modules["onnx_ir._symbolic_shapes"].sympy is sympy
        assert ir.SymbolicDim(sympy.Symbol("s0") * 2 + 1).value == "2*s0 + 1"
        print("OK")
        """
    )
    assert out.strip().endswith("OK")


def test_sympy_imported_before_unframe_is_used_as_it_is() -> None:
    out = _run(
        """
        import sympy
        import unframe
        import onnx_ir as ir
        from unframe.shared_ir.lazy_imports import is_deferred

        assert ir._core.sympy is sympy and not is_deferred(ir._core.sympy)
        assert ir.SymbolicDim(sympy.Symbol("n") + 2).value == "n + 2"
        print("OK")
        """
    )
    assert out.strip().endswith("OK")


def test_onnx_ir_imported_before_unframe_is_left_alone() -> None:
    out = _run(
        """
        import sys
        import onnx_ir as ir
        import unframe
        from unframe.shared_ir.lazy_imports import _OnnxIrFinder

        assert "sympy" in sys.modules
        assert not any(isinstance(finder, _OnnxIrFinder) for finder in sys.meta_path)
        assert (ir.SymbolicDim("k") - 1).evaluate({"k": 7}) == 6
        print("OK")
        """
    )
    assert out.strip().endswith("OK")


_FACTORY = """
import torch


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).reshape(x.shape[0] * 3)


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return Net().eval()
"""


def test_pytorch_conversion_with_a_dynamic_axis_uses_the_deferred_sympy(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the PyTorch frontend needs torch (extra: pytorch)")
    (tmp_path / "net.py").write_text(_FACTORY)
    out = _run(
        f"""
        import re, sys
        from unframe.cli.main import main
        import onnx, onnx_ir as ir

        assert "sympy" not in sys.modules
        sys.argv = ["unframe", "convert", "py:net.py:make_model", "--input", "x=2,4",
                    "--dynamic", "x=0", "-o", {str(tmp_path / "net.onnx")!r}, "--validate"]
        try:
            main()  # --validate: the ONNX model's outputs against torch's own
        except SystemExit as done:
            assert done.code in (0, None), done.code
        import sympy  # torch's, imported after onnx_ir: the one the stand-in reads
        assert ir._core.sympy.Expr is sympy.Expr

        (output,) = onnx.load({str(tmp_path / "net.onnx")!r}).graph.output
        extent = output.type.tensor_type.shape.dim[0].dim_param  # 3 times the batch axis
        (symbol,) = set(re.findall(r"[A-Za-z_]\\w*", extent))
        assert ir.SymbolicDim(extent).evaluate({{symbol: 5}}) == 15, extent
        assert (ir.SymbolicDim(extent) + 1).evaluate({{symbol: 2}}) == 7, extent
        print("OK")
        """,
        cwd=tmp_path,
    )
    assert out.strip().endswith("OK")
