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


# -- onnxscript: its optimizer without the rest of the package (issue #15) ----------------------


def test_optimizer_block_leaves_the_rest_of_onnxscript_and_folds_with_onnx_kernels() -> None:
    out = _run(
        """
        import math, sys
        import numpy as np
        import onnx_ir as ir
        import unframe
        from unframe.shared_ir.lazy_imports import onnxscript_optimizer, is_partial

        # Sin has no folding of onnxscript's own: the folder evaluates it with onnx's kernel.
        x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([2]))
        angles = ir.Value(name="angles", const_value=ir.tensor(np.array([0.5, 2.0], np.float32)))
        sin = ir.node("Sin", [angles], num_outputs=1)
        add = ir.node("Add", [x, sin.outputs[0]], num_outputs=1)
        add.outputs[0].name = "y"
        graph = ir.Graph([x], add.outputs, nodes=[sin, add], initializers=[angles],
                         opset_imports={"": 18})
        model = ir.Model(graph, ir_version=10)

        with onnxscript_optimizer():
            assert is_partial(sys.modules["onnxscript"])
            for heavy in ("onnxscript.onnx_opset", "onnxscript._internal.main",
                          "onnx.reference.ops"):
                assert heavy not in sys.modules, heavy
            from onnxscript.optimizer import fold_constants
            fold_constants(model)
        assert not any(name.partition(".")[0] == "onnxscript" for name in sys.modules)

        assert [node.op_type for node in model.graph] == ["Add"], list(model.graph)
        folded = model.graph.node(0).inputs[1].const_value.numpy()
        assert np.allclose(folded, [math.sin(0.5), math.sin(2.0)], rtol=1e-6), folded
        import onnx
        assert type(onnx.reference.ops).__name__ == "module" and "onnx.reference.ops" in sys.modules
        print("OK")
        """
    )
    assert out.strip().endswith("OK")


_SCRIPTED = """
from onnxscript import FLOAT, script
from onnxscript import opset18 as op


@script()
def scaled_relu(x: FLOAT[3]) -> FLOAT[3]:
    return op.Mul(op.Relu(x), op.Constant(value_float=2.0))
"""


def test_onnxscript_imported_after_an_optimizer_block_is_the_whole_package(
    tmp_path: Path,
) -> None:
    (tmp_path / "scripted.py").write_text(_SCRIPTED)
    out = _run(
        """
        import importlib.metadata, sys
        import numpy as np
        import unframe
        from unframe.shared_ir.lazy_imports import onnxscript_optimizer, is_partial
        from unframe.shared_ir.passes import optimize

        with onnxscript_optimizer():
            from onnxscript import rewriter as partial_rewriter
        import onnxscript
        assert onnxscript.__version__ == importlib.metadata.version("onnxscript")
        assert not is_partial(onnxscript)
        from onnxscript import rewriter
        assert rewriter is not partial_rewriter  # the whole package's own
        with onnxscript_optimizer():  # from here on, the whole package is the one used
            from onnxscript import rewriter as used
        assert used is rewriter

        import onnxruntime as ort
        from scripted import scaled_relu
        proto = scaled_relu.to_model_proto()
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"x": np.array([-1.0, 0.5, 3.0], np.float32)})
        assert y.tolist() == [0.0, 1.0, 6.0], y
        print("OK")
        """,
        cwd=tmp_path,
    )
    assert out.strip().endswith("OK")


def test_torch_onnx_after_an_optimizer_block_exports_and_imports_onnxscript_whole() -> None:
    """torch.onnx imports onnxscript's submodules in its own order (run against a package whose
    ``__init__`` ran late, it failed: ``cannot import name 'BFLOAT16' from 'onnxscript'``)."""
    pytest.importorskip("torch", reason="torch.onnx needs torch (extra: pytorch)")
    out = _run(
        """
        import io, sys
        import numpy as np
        import onnx_ir as ir
        import unframe
        from unframe.shared_ir.passes import optimize

        x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([2]))
        relu = ir.node("Relu", [x], num_outputs=1)
        relu.outputs[0].name = "y"
        optimize(ir.Model(ir.Graph([x], relu.outputs, nodes=[relu], opset_imports={"": 18}),
                          ir_version=10))
        assert "onnxscript" not in sys.modules

        import onnxscript._internal.converter  # a submodule first, as torch.onnx's imports go
        import torch
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval()
        sample = torch.randn(2, 4)
        program = torch.onnx.export(net, (sample,), dynamo=True, verbose=False)
        buffer = io.BytesIO()
        program.save(buffer)

        import onnxruntime as ort
        session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {session.get_inputs()[0].name: sample.numpy()})
        assert np.allclose(got, net(sample).detach().numpy(), atol=1e-6), got
        print("OK")
        """
    )
    assert out.strip().endswith("OK")


_PACKAGES = {
    "lazyok/__init__.py": "import builtins\nbuiltins.LAZYOK_INITS = getattr(builtins, 'LAZYOK_INITS', 0) + 1\nVALUE = 42\n",
    "lazyok/helper.py": "TWO = 2\n",
    "lazyok/sub.py": (
        "import heavy.kernels\nfrom lazyok import helper\nANSWER = helper.TWO * 21\n\n\n"
        "def kernel():\n    return heavy.kernels.K\n"
    ),
    "heavy/__init__.py": "",
    "heavy/kernels.py": "import builtins\nbuiltins.HEAVY_LOADS = getattr(builtins, 'HEAVY_LOADS', 0) + 1\nK = 'k'\n",
    "needsinit/__init__.py": "import builtins\nbuiltins.NEEDS_INITS = getattr(builtins, 'NEEDS_INITS', 0) + 1\nCONFIG = {'k': 1}\n",
    "needsinit/sub.py": "from needsinit import CONFIG\nSEEN = dict(CONFIG)\n",
}


def test_partial_import_keeps_its_modules_to_its_blocks_or_falls_back(tmp_path: Path) -> None:
    for name, text in _PACKAGES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    out = _run(
        """
        import builtins, sys
        sys.path.insert(0, ".")
        from unframe.shared_ir.lazy_imports import partially_imported, is_partial

        with partially_imported("lazyok", ["lazyok.sub"], ["heavy", "heavy.kernels"]):
            sub = sys.modules["lazyok.sub"]
            assert is_partial(sys.modules["lazyok"]) and sub.ANSWER == 42
            with partially_imported("lazyok", ["lazyok.sub"]):  # nested: the same modules
                assert sys.modules["lazyok.sub"] is sub
        assert not hasattr(builtins, "LAZYOK_INITS")
        assert "lazyok" not in sys.modules and "lazyok.sub" not in sys.modules
        assert "heavy" not in sys.modules and "heavy.kernels" not in sys.modules
        assert sub.kernel() == "k" and builtins.HEAVY_LOADS == 1  # loaded on the first read
        assert sys.modules["heavy.kernels"].K == "k" and sub.kernel() == "k"
        assert builtins.HEAVY_LOADS == 1

        with partially_imported("lazyok", ["lazyok.sub"]):  # shelved between blocks, not rerun
            assert sys.modules["lazyok.sub"] is sub
        import lazyok  # outside a block: the whole package, imported anew
        assert not is_partial(lazyok) and lazyok.VALUE == 42 and builtins.LAZYOK_INITS == 1
        with partially_imported("lazyok", ["lazyok.sub"]):
            assert sys.modules["lazyok"] is lazyok and lazyok.sub is not sub
        assert sys.modules["lazyok"] is lazyok

        # A submodule reading what the __init__ sets: imported the ordinary way instead.
        with partially_imported("needsinit", ["needsinit.sub"]):
            assert not is_partial(sys.modules["needsinit"]) and builtins.NEEDS_INITS == 1
        import needsinit
        assert sys.modules["needsinit.sub"].SEEN == {"k": 1} and needsinit.sub.SEEN == {"k": 1}
        assert builtins.NEEDS_INITS == 1
        print("OK")
        """,
        cwd=tmp_path,
    )
    assert out.strip().endswith("OK")
