"""Every MIL op the Core ML backend can emit is read by the frontend on a package coremltools
wrote (issue 12, "Checking numbers without a Mac").

Off macOS, ``validate``, ``roundtrip`` and ``conformance`` re-import what the backend wrote through
our frontend, so a frontend converter checked only on the backend's own output could share its
mistake. test_mil_coverage.py covers the ops the neural-network converters emit; here are the
rest, each in a package written by coremltools from a tiny PyTorch model (``ct.convert``,
mlprogram, float32) and compared with torch's outputs, or, where coremltools' PyTorch converter
never writes the op, in a program built with coremltools' own ``mb.program`` builder and compared
with numpy's reading of the op's documented meaning. Then the op names the backend's source can
emit (read with ``ast``) must all appear in the programs these tests and test_mil_coverage.py's
read, so a new ``mb.<op>`` in the backend fails here until a coremltools-written package holds it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import unframe.backends.coreml as coreml_backend
from tests.frontends.coreml.coreml_packages import ATOL, RTOL, package_op_types, write_mlprogram
from unframe.backends.coreml.native import coremltools, quiet_stderr
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.runner import run_onnxruntime

torch = pytest.importorskip("torch", reason="the packages are converted from PyTorch models")
F = torch.nn.functional

# test_mil_coverage.py's models: the completeness test counts the ops of their packages too.
from tests.frontends.coreml.test_mil_coverage import (  # noqa: E402
    MODELS as COVERAGE_MODELS,
)
from tests.frontends.coreml.test_mil_coverage import Branching, Counting  # noqa: E402

# Tracing records the models' constant sizes and tensors as constants, as intended here.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


class Elementwise(torch.nn.Module):
    """Trigonometry, erf, sign, ceil, a running sum, and reductions by norm, log-sum-exp and
    arg-min."""

    def forward(self, x: Any) -> Any:
        inside = torch.tanh(x) * 0.9  # within acos', asin's and atanh's domains
        trig = torch.acos(inside) + torch.asin(inside) + torch.atan(x) + torch.atanh(inside)
        trig = trig + torch.cos(x) + torch.cosh(inside) + torch.sin(x) + torch.sinh(inside)
        steps = torch.tan(inside) + torch.erf(x) + torch.sign(x) + torch.ceil(x * 2)
        reduced = torch.argmin(x, -1, keepdim=True).float() + torch.norm(x, dim=-1, keepdim=True)
        return trig + steps + torch.cumsum(x, -1) + reduced + torch.logsumexp(x, -1, keepdim=True)


class Rearranging(torch.nn.Module):
    """Pixel shuffles, advanced indexing read and written, nonzero, and fold with padding."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("rows", torch.tensor([0, 2, 1]))
        self.register_buffer("cols", torch.tensor([3, 0, 1]))

    def forward(self, x: Any) -> tuple[Any, Any, Any]:
        shuffled = F.pixel_unshuffle(F.pixel_shuffle(x, 2) * 2, 2)
        picked = x[:, self.rows, self.cols]  # gather_nd
        batch = torch.zeros_like(self.rows)
        placed = torch.index_put(shuffled, (batch, self.rows, self.cols), picked[0])  # scatter_nd
        found = torch.nonzero(x[0, 0] > 0.5)
        # The padded rim cut off by slice_by_size (coremltools folds only with stride >= kernel).
        blocks = F.fold(x.reshape(1, 8, 16)[:, :, :9], (4, 4), 2, stride=2, padding=1)
        return placed, found, blocks


class Flexible(torch.nn.Module):
    """A roll and a variance over an axis sized at run time: mod and reduce_prod of the shape."""

    def forward(self, x: Any) -> Any:
        return torch.roll(x, 2, -1) + torch.var(x, -1, keepdim=True)


class Halving(torch.nn.Module):
    """Data-dependent iteration (scripted, not traced): coremltools writes a while_loop."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # TorchScript reads the annotations
        y = x
        while y.abs().sum() > 1.0:
            y = y * 0.5
        return y


@dataclass(frozen=True)
class TorchCase:
    """A model, how coremltools converts it, and the MIL ops its package must hold."""

    factory: Callable[[], Any]
    shape: tuple[int, ...]
    holds: frozenset[str]
    flexible_last: bool = False  # the last dim a ct.RangeDim(1, 8)
    scripted: bool = False
    ios16: bool = False  # pixel_unshuffle is an iOS16 op


TORCH_CASES = {
    "elementwise": TorchCase(
        Elementwise,
        (2, 3, 5),
        frozenset(
            "acos asin atan atanh cos cosh sin sinh tan erf sign ceil cumsum reduce_argmin "
            "reduce_l2_norm reduce_log_sum_exp".split()
        ),
    ),
    "rearranging": TorchCase(
        Rearranging,
        (1, 8, 4, 4),
        frozenset(
            "pixel_shuffle pixel_unshuffle gather_nd scatter_nd non_zero slice_by_size".split()
        ),
        ios16=True,
    ),
    "flexible": TorchCase(
        Flexible,
        (2, 4, 5),
        frozenset({"mod", "reduce_prod", "shape", "range_1d"}),  # mod of int32 sizes here
        flexible_last=True,
    ),
    "halving": TorchCase(Halving, (2, 3), frozenset({"while_loop"}), scripted=True),
}


def _write_torch(
    module: Any, example: Any, shape: Any, path: Path, *, scripted: bool, ios16: bool = False
) -> Path:
    ct = coremltools()
    traced = torch.jit.script(module) if scripted else torch.jit.trace(module, example)
    return write_mlprogram(traced, path, [ct.TensorType(name="x", shape=shape)], ios16=ios16)


@pytest.fixture(scope="module")
def torch_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ct = coremltools()
    made = {}
    for name, case in TORCH_CASES.items():
        example = torch.randn(*case.shape, generator=torch.Generator().manual_seed(0))
        shape: Any = case.shape
        if case.flexible_last:
            shape = (*case.shape[:-1], ct.RangeDim(1, 8))
        path = tmp_path_factory.mktemp(name) / f"{name}.mlpackage"
        made[name] = _write_torch(
            case.factory().eval(), example, shape, path, scripted=case.scripted, ios16=case.ios16
        )
    return made


def _inputs_for(name: str) -> list[Any]:
    """The inputs each torch package is checked on: two where the package's behaviour turns on
    the input (a size at run time, a loop's trip count)."""
    case = TORCH_CASES[name]
    generator = torch.Generator().manual_seed(1)
    if case.flexible_last:
        return [torch.randn(*case.shape[:-1], n, generator=generator) for n in (3, 7)]
    if case.scripted:
        small = torch.rand(*case.shape, generator=generator) * 0.1  # no iteration
        return [small, small + 3.0]
    return [torch.randn(*case.shape, generator=generator)]


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_coremltools_package_holds_its_ops_and_matches_torch(
    name: str, torch_packages: dict[str, Path]
) -> None:
    path = torch_packages[name]
    case = TORCH_CASES[name]
    missing = case.holds - package_op_types(path)
    assert not missing, f"coremltools no longer writes {sorted(missing)} for the {name} model"
    model = load_coreml(path)
    module = case.factory().eval()
    for x in _inputs_for(name):
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        actual = list(run_onnxruntime(model, {"x": x.numpy()}).values())
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert got.shape == tuple(want.shape)
            np.testing.assert_allclose(got, want.numpy(), rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Ops coremltools' PyTorch converter never writes (it decomposes torch's LocalResponseNorm and
# softsign, resamples through upsample_bilinear, and has no torch op for the others): a program
# built with coremltools' own builder, saved by ct.convert with its default passes (which keep
# every op here), and the expected values from numpy following each op's documented meaning.

IMAGE_SHAPE, SEQUENCE_SHAPE = (1, 8, 4, 6), (3, 5, 2)
LENGTHS = np.array([3, 0, 1], np.int32)
RESIZED = (7, 3)  # up on height, down on width
SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "DEFAULT", "UNALIGN_CORNERS")  # the ones the backend uses


def _build_program() -> Any:
    """A fresh program each time: ct.convert mutates the program it is given."""
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb

    image = mb.TensorSpec(shape=IMAGE_SHAPE)
    sequence = mb.TensorSpec(shape=SEQUENCE_SHAPE)

    @mb.program(input_specs=[image, sequence], opset_version=ct.target.iOS16)
    def program(x: Any, s: Any) -> Any:
        resized = [
            mb.resize_bilinear(
                x=x,
                target_size_height=RESIZED[0],
                target_size_width=RESIZED[1],
                sampling_mode=mode,
                name=f"resized_{mode.lower()}",
            )
            for mode in SAMPLING_MODES
        ]
        return (
            mb.depth_to_space(x=x, block_size=2, name="depth_to_space"),
            mb.space_to_depth(x=x, block_size=2, name="space_to_depth"),
            mb.local_response_norm(x=x, size=3, alpha=0.3, beta=0.6, k=1.5, name="lrn"),
            *resized,
            mb.reverse_sequence(x=s, lengths=LENGTHS, seq_axis=1, batch_axis=0, name="reversed"),
            mb.reduce_l1_norm(x=s, axes=[1], keep_dims=False, name="l1"),
            mb.reduce_log_sum(x=mb.abs(x=s), axes=[1, 2], keep_dims=True, name="log_sum"),
            mb.reduce_sum_square(x=s, axes=[-1], keep_dims=False, name="sum_square"),
            mb.softsign(x=s, name="softsign"),
            mb.mod(x=s, y=np.float32(0.7), name="mod"),
            mb.identity(x=s, name="same"),
        )

    return program


def _depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    # TensorFlow's order (depth, then column, then row: ONNX's DCR): coremltools' TensorFlow
    # frontend lowers tf.nn.depth_to_space to this op between NHWC <-> NCHW transposes only.
    n, c, h, w = x.shape
    blocks = x.reshape(n, block, block, c // block**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    return blocks.reshape(n, c // block**2, h * block, w * block)


def _space_to_depth(x: np.ndarray, block: int) -> np.ndarray:
    # TensorFlow's order too, by the same lowering of tf.nn.space_to_depth.
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // block, block, w // block, block).transpose(0, 3, 5, 1, 2, 4)
    return blocks.reshape(n, c * block * block, h // block, w // block)


def _local_response_norm(
    x: np.ndarray, size: int, alpha: float, beta: float, k: float
) -> np.ndarray:
    # MIL's formula, over the ``size`` channels centred on each (odd size: TensorFlow's
    # depth_radius, which coremltools' TensorFlow frontend lowers to this op).
    squares = np.pad(x**2, [(0, 0), (size // 2, size // 2), (0, 0), (0, 0)])
    window = sum(squares[:, i : i + x.shape[1]] for i in range(size))
    return x / (k + alpha / size * window) ** beta


def _bilinear_grid(mode: str, n_in: int, n_out: int) -> np.ndarray:
    """resize_bilinear's sampling grid, as its docstring spells each mode (then clamped)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode == "STRICT_ALIGN_CORNERS":
        points = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        points = i * (n_in - n_in / n_out) / (n_out - 1)
    else:  # UNALIGN_CORNERS
        points = (i + 0.5) * n_in / n_out - 0.5
    return np.clip(points, 0, n_in - 1)


def _bilinear(x: np.ndarray, mode: str, sizes: tuple[int, int]) -> np.ndarray:
    for axis, n_out in zip((-2, -1), sizes, strict=True):
        n_in = x.shape[axis]
        points = _bilinear_grid(mode, n_in, n_out)
        low = np.floor(points).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        weight = (points - low).reshape((-1, 1) if axis == -2 else (-1,))
        x = np.take(x, low, axis) * (1 - weight) + np.take(x, high, axis) * weight
    return x


def _reverse_sequence(s: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    out = s.copy()
    for batch, length in enumerate(lengths):
        out[batch, :length] = s[batch, :length][::-1]
    return out


def _builder_expected(x: np.ndarray, s: np.ndarray) -> list[np.ndarray]:
    x64, s64 = x.astype(np.float64), s.astype(np.float64)
    return [
        _depth_to_space(x64, 2),
        _space_to_depth(x64, 2),
        _local_response_norm(x64, 3, 0.3, 0.6, 1.5),
        *(_bilinear(x64, mode, RESIZED) for mode in SAMPLING_MODES),
        _reverse_sequence(s64, LENGTHS),
        np.abs(s64).sum(1),
        np.log(np.abs(s64).sum((1, 2), keepdims=True)),
        (s64**2).sum(-1),
        s64 / (1 + np.abs(s64)),
        np.mod(s64, np.float32(0.7)),  # MIL's mod is Python's % (floored): the divisor's sign
        s64,
    ]


BUILDER_HOLDS = frozenset(
    "depth_to_space space_to_depth local_response_norm resize_bilinear reverse_sequence "
    "reduce_l1_norm reduce_log_sum reduce_sum_square softsign mod identity".split()
)


@pytest.fixture(scope="module")
def builder_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with quiet_stderr():
        program = _build_program()
    return write_mlprogram(
        program, tmp_path_factory.mktemp("builder") / "builder.mlpackage", ios16=True
    )


def test_builder_package_holds_its_ops_and_matches_numpy(builder_package: Path) -> None:
    missing = BUILDER_HOLDS - package_op_types(builder_package)
    assert not missing, f"coremltools' passes removed {sorted(missing)}"
    rng = np.random.default_rng(0)
    x = rng.standard_normal(IMAGE_SHAPE).astype(np.float32)
    s = (rng.standard_normal(SEQUENCE_SHAPE) * 2).astype(np.float32)
    outputs = run_onnxruntime(load_coreml(builder_package), {"x": x, "s": s})
    expected = _builder_expected(x, s)
    assert len(outputs) == len(expected)
    for (name, got), want in zip(outputs.items(), expected, strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Completeness: what the backend can emit against what the coverage tests read.

#: MIL ops the backend emits that no coremltools-written package can hold, and why. Empty: the
#: builder above can write any op coremltools' PyTorch converter does not. A gap added here must
#: say why; one that becomes covered fails below, so the list cannot go stale.
UNPRODUCIBLE: dict[str, str] = {}


def _is_builder(node: ast.expr) -> bool:
    """``mb`` or ``<anything>.mb`` (``ctx.mb``): the MIL builder as the backend names it."""
    return (isinstance(node, ast.Name) and node.id == "mb") or (
        isinstance(node, ast.Attribute) and node.attr == "mb"
    )


def backend_mil_ops(root: Path | None = None) -> dict[str, str]:
    """Each MIL op the backend's source can build, with where it is first built.

    Read with ``ast``: every ``mb.<op>`` (``ctx.mb.<op>``) called or referenced, and, in modules that also build through
    ``getattr(mb, name)``, every string literal that names a MIL op (the tables those calls
    dispatch on: ``"acos"``, ``"reduce_l1_norm"``, ...). Names that are not MIL ops
    (``mb.placeholder``, the builder's other methods) are left out.
    """
    coremltools()
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    known = set(SSAOpRegistry.core_ops)
    root = root or Path(coreml_backend.__file__).parent
    emitted: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            # Calls, and references called later (``reduce = mb.reduce_max``).
            if isinstance(node, ast.Attribute) and _is_builder(node.value) and node.attr in known:
                emitted.setdefault(node.attr, f"{where}:{node.lineno}")
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        dispatches = any(
            isinstance(call.func, ast.Name)
            and call.func.id == "getattr"
            and call.args
            and _is_builder(call.args[0])
            for call in calls
        )
        if not dispatches:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in known:
                    emitted.setdefault(node.value, f"{where}:{node.lineno} (by getattr)")
    return emitted


@pytest.fixture(scope="module")
def coverage_packages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """test_mil_coverage.py's packages, written again as that file writes them (same models,
    shapes and conversion), for their op types."""
    ct = coremltools()
    folder = tmp_path_factory.mktemp("coverage")
    made = []
    for name, (factory, shape) in COVERAGE_MODELS.items():
        torch.manual_seed(0)
        module = factory().eval()
        made.append(
            _write_torch(
                module, torch.randn(*shape), shape, folder / f"{name}.mlpackage", scripted=False
            )
        )
    made.append(_write_torch(Branching(), None, (2, 3), folder / "cond.mlpackage", scripted=True))
    made.append(
        _write_torch(
            Counting(),
            torch.randn(3, 4),
            (ct.RangeDim(1, 8), 4),
            folder / "flexible.mlpackage",
            scripted=False,
        )
    )
    return made


def test_backend_scan_finds_direct_and_dispatched_ops() -> None:
    emitted = backend_mil_ops()
    # One op of each kind the scan reads: a direct call, one through getattr, one by ctx.mb.
    assert {"conv", "reduce_l1_norm", "depth_to_space"} <= set(emitted)
    assert "placeholder" not in emitted and len(emitted) > 90


def test_every_mil_op_the_backend_can_emit_is_read_on_a_coremltools_package(
    torch_packages: dict[str, Path], builder_package: Path, coverage_packages: list[Path]
) -> None:
    emitted = backend_mil_ops()
    paths = [*torch_packages.values(), builder_package, *coverage_packages]
    covered = set().union(*(package_op_types(path) for path in paths))
    missing = {op: where for op, where in emitted.items() if op not in covered | set(UNPRODUCIBLE)}
    assert not missing, (
        "MIL ops the backend can emit that no coremltools-written package in the frontend tests "
        f"holds (add a model here that makes coremltools write each): {missing}"
    )
    stale = {op for op in UNPRODUCIBLE if op in covered or op not in emitted}
    assert not stale, f"UNPRODUCIBLE entries now covered or no longer emitted: {sorted(stale)}"


def test_ast_scan_reads_calls_and_dispatch_tables(tmp_path: Path) -> None:
    """The scan's rules on a tree written here: direct calls count, a string naming an op counts
    only in a module that dispatches through ``getattr`` on the builder, non-ops do not."""
    package = tmp_path / "backend"
    package.mkdir()
    (package / "direct.py").write_text(
        'NAMES = {"acos": 1}\n'
        "def f(ctx, mb):\n"
        "    mb.placeholder(shape=(1,))\n"
        "    reduce = mb.reduce_max\n"
        "    return ctx.mb.sin(x=mb.cos(x=1))\n"
    )
    (package / "dispatch.py").write_text(
        'UNARY = {"Tan": "tan", "Mode": "not_an_op"}\n'
        "def g(ctx, op):\n"
        "    return getattr(ctx.mb, op)(x=1)\n"
    )
    found = backend_mil_ops(package)
    assert found == {
        "cos": "backend/direct.py:5",
        "reduce_max": "backend/direct.py:4",
        "sin": "backend/direct.py:5",
        "tan": "backend/dispatch.py:1 (by getattr)",
    }
