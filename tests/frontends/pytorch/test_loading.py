"""load_pytorch: factories, .pt2 programs and TorchScript files made in tmp_path, vs torch's outputs."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest

torch = pytest.importorskip("torch")

from unframe.converters.framework import ConvertOptions  # noqa: E402
from unframe.frontends.pytorch import (  # noqa: E402
    ExporterFallbackWarning,
    is_factory_spec,
    load_pytorch,
)
from unframe.shared_ir.inputs import InputSpec  # noqa: E402
from unframe.shared_ir.runner import run_reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5

FACTORY = textwrap.dedent(
    """
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.bn.running_mean.fill_(0.3)
            self.bn.running_var.fill_(2.0)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, image, scale):
            y = torch.relu(self.bn(self.conv(image))).mean(dim=(2, 3))
            return self.fc(y) * scale

    def make_model():
        torch.manual_seed(0)
        return Net()
    """
)


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    result = run_reference(model, feeds)
    assert result.engine == "onnxruntime", result.fallback_reason
    return next(iter(result.outputs.values()))


def _reference(path: Path, *args: torch.Tensor) -> np.ndarray:
    """The factory's model built independently of unframe, in eval mode."""
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own test file
    module = namespace["make_model"]().eval()  # type: ignore[operator]
    with torch.no_grad():
        return module(*args).numpy()


def _write_factory(folder: Path, extra: str = "") -> Path:
    path = folder / "net_factory.py"
    path.write_text(FACTORY + extra)
    return path


def test_factory_spec_detection(tmp_path: Path) -> None:
    assert is_factory_spec("py:models/net.py:make_model")
    assert is_factory_spec("py:pkg.sub.module:build")
    assert not is_factory_spec("model.pt2")
    assert not is_factory_spec("model.pt")
    assert not is_factory_spec("pkg.module:")
    # Without ``py:`` only an existing ``.py`` file named with its suffix is a factory.
    assert not is_factory_spec("pkg.sub.module:build")
    assert not is_factory_spec("models/net.py:make_model")
    assert not is_factory_spec("model.onnx:weights")
    existing = _write_factory(tmp_path)
    assert is_factory_spec(f"{existing}:make_model")
    assert not is_factory_spec(f"{existing.with_suffix('')}:make_model")


def test_factory_file_with_inputs_and_dynamic_batch(tmp_path: Path) -> None:
    path = _write_factory(tmp_path)
    options = ConvertOptions(
        inputs={
            "image": InputSpec("image", (2, 3, 8, 8)),
            "scale": InputSpec("scale", (1,), np.dtype("float32")),
        },
        dynamic={"image": (0,)},
    )
    model = load_pytorch(f"{path}:make_model", options)
    assert [v.name for v in model.graph.inputs] == ["image", "scale"]
    shape = model.graph.inputs[0].shape
    assert shape is not None and isinstance(shape[0], ir.SymbolicDim)
    for batch in (1, 3):
        image = torch.randn(batch, 3, 8, 8)
        scale = torch.tensor([1.5])
        actual = _run(model, {"image": image.numpy(), "scale": scale.numpy()})
        np.testing.assert_allclose(actual, _reference(path, image, scale), rtol=RTOL, atol=ATOL)


def test_symbolic_dim_in_input_spec_stays_dynamic(tmp_path: Path) -> None:
    path = _write_factory(tmp_path)
    options = ConvertOptions(
        inputs={"image": InputSpec("image", ("batch", 3, 8, 8)), "scale": InputSpec("scale", (1,))}
    )
    model = load_pytorch(f"{path}:make_model", options)
    shape = model.graph.inputs[0].shape
    assert shape is not None and str(shape[0]) == "batch"


def test_factory_example_inputs_function_is_used(tmp_path: Path) -> None:
    path = _write_factory(
        tmp_path,
        "\ndef example_inputs():\n    return (torch.randn(2, 3, 6, 6), torch.tensor([2.0]))\n",
    )
    model = load_pytorch(f"{path}:make_model", ConvertOptions())
    image, scale = torch.randn(2, 3, 6, 6), torch.tensor([0.5])
    actual = _run(model, {"image": image.numpy(), "scale": scale.numpy()})
    np.testing.assert_allclose(actual, _reference(path, image, scale), rtol=RTOL, atol=ATOL)


def test_factory_from_a_package_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "unframe_test_pkg_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write_factory(package)
    monkeypatch.chdir(tmp_path)
    options = ConvertOptions(
        inputs={"image": InputSpec("image", (1, 3, 5, 5)), "scale": InputSpec("scale", (1,))}
    )
    model = load_pytorch("py:unframe_test_pkg_models.net_factory:make_model", options)
    image, scale = torch.randn(1, 3, 5, 5), torch.tensor([3.0])
    actual = _run(model, {"image": image.numpy(), "scale": scale.numpy()})
    np.testing.assert_allclose(
        actual, _reference(package / "net_factory.py", image, scale), rtol=RTOL, atol=ATOL
    )


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 4)
        self.register_buffer("offset", torch.linspace(-1, 1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x)) + self.offset


def test_pt2_program_with_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Small().eval()
    program = torch.export.export(
        module, (torch.randn(3, 6),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    path = tmp_path / "small.pt2"
    torch.export.save(program, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExporterFallbackWarning)
        # --input only shapes validation data for a program; it must name a real input.
        model = load_pytorch(path, ConvertOptions(inputs={"x": InputSpec("x", (5, 6))}))
    shape = model.graph.inputs[0].shape
    assert shape is not None and isinstance(shape[0], ir.SymbolicDim)
    for batch in (1, 7):
        x = torch.randn(batch, 6)
        with torch.no_grad():
            expected = module(x).numpy()
        np.testing.assert_allclose(_run(model, {"x": x.numpy()}), expected, rtol=RTOL, atol=ATOL)


class Loop(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(x.shape[0]):
            x = torch.tanh(self.linear(x))
        return x


@pytest.mark.parametrize("suffix", [".pt", ".ts"])
def test_torchscript_file_with_a_loop(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(0)
    scripted = torch.jit.script(Loop().eval())
    path = tmp_path / f"loop{suffix}"
    torch.jit.save(scripted, str(path))
    options = ConvertOptions(inputs={"x": InputSpec("x", (3, 4))}, dynamic={"x": (0,)})
    with pytest.warns(ExporterFallbackWarning, match="TorchScript module"):
        model = load_pytorch(path, options)
    assert any(node.op_type == "Loop" for node in model.graph)
    for rows in (1, 5):
        x = torch.randn(rows, 4)
        with torch.no_grad():
            expected = scripted(x).numpy()
        np.testing.assert_allclose(_run(model, {"x": x.numpy()}), expected, rtol=RTOL, atol=ATOL)


def test_traced_torchscript_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Small().eval()
    traced = torch.jit.trace(module, (torch.randn(2, 6),))
    path = tmp_path / "small.pt"
    torch.jit.save(traced, str(path))
    with pytest.warns(ExporterFallbackWarning):
        model = load_pytorch(path, ConvertOptions(inputs={"x": InputSpec("x", (2, 6))}))
    x = torch.randn(2, 6)
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(_run(model, {"x": x.numpy()}), expected, rtol=RTOL, atol=ATOL)


def test_integer_inputs_with_dynamic_batch_and_sequence(tmp_path: Path) -> None:
    path = tmp_path / "tokens.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch

            class Tagger(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = torch.nn.Embedding(10, 8)
                    self.gru = torch.nn.GRU(8, 8, batch_first=True)

                def forward(self, ids):
                    out, _ = self.gru(self.embed(ids))
                    return out

            def make_model():
                torch.manual_seed(0)
                return Tagger()
            """
        )
    )
    options = ConvertOptions(
        inputs={"ids": InputSpec("ids", (2, 5), np.dtype("int64"))}, dynamic={"ids": (0, 1)}
    )
    model = load_pytorch(f"{path}:make_model", options)
    shape = model.graph.inputs[0].shape
    assert shape is not None and all(isinstance(d, ir.SymbolicDim) for d in shape)
    assert model.graph.inputs[0].dtype == ir.DataType.INT64
    ids = torch.randint(0, 10, (3, 9), generator=torch.Generator().manual_seed(0))
    actual = _run(model, {"ids": ids.numpy()})
    np.testing.assert_allclose(actual, _reference(path, ids), rtol=RTOL, atol=ATOL)
