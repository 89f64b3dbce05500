"""from_torch: PyTorch modules -> IR, checked against torch's own outputs through onnxruntime."""

from __future__ import annotations

import warnings

import numpy as np
import onnx_ir as ir
import pytest

torch = pytest.importorskip("torch")

from unframe.frontends.pytorch import ExporterFallbackWarning, from_torch  # noqa: E402
from unframe.shared_ir.errors import ExitCode, UnsupportedError  # noqa: E402
from unframe.shared_ir.runner import run_reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _outputs(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    result = run_reference(model, feeds)
    assert result.engine == "onnxruntime", result.fallback_reason
    return list(result.outputs.values())


def _torch_outputs(module: torch.nn.Module, *args: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, tuple | list) else (out,)
    return [o.numpy() for o in outs]


def _ops(model: ir.Model) -> set[str]:
    found: set[str] = set()
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        found.add(node.op_type)
    return found


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)

    def forward(self, features: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.linear(features)) + bias)


def test_matches_torch_and_keeps_forward_names() -> None:
    torch.manual_seed(0)
    module = TwoInputs().eval()
    args = (torch.randn(2, 4), torch.randn(2, 3))
    model = from_torch(module, args)
    assert [v.name for v in model.graph.inputs] == ["features", "bias"]
    feeds = {"features": args[0].numpy(), "bias": args[1].numpy()}
    (actual,) = _outputs(model, feeds)
    (expected,) = _torch_outputs(module, *args)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def test_input_names_rename_the_graph_inputs() -> None:
    model = from_torch(
        TwoInputs().eval(), (torch.randn(2, 4), torch.randn(2, 3)), input_names=["a", "b"]
    )
    assert [v.name for v in model.graph.inputs] == ["a", "b"]


def test_dynamic_batch_stays_symbolic_and_runs_at_two_sizes() -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()
    ).eval()
    model = from_torch(module, (torch.randn(2, 3, 8, 8),), dynamic_shapes={"input": (0,)})
    shape = model.graph.inputs[0].shape
    assert shape is not None
    assert isinstance(shape[0], ir.SymbolicDim) and shape[0].value is not None
    assert list(shape[1:]) == [3, 8, 8]
    for batch in (1, 5):
        x = torch.randn(batch, 3, 8, 8)
        (actual,) = _outputs(model, {model.graph.inputs[0].name or "": x.numpy()})
        (expected,) = _torch_outputs(module, x)
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def test_torch_dim_objects_are_passed_through() -> None:
    module = TwoInputs().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    model = from_torch(
        module,
        (torch.randn(2, 4), torch.randn(2, 3)),
        dynamic_shapes={"features": {0: batch}, "bias": {0: batch}},
    )
    first = model.graph.inputs[0].shape
    assert first is not None and isinstance(first[0], ir.SymbolicDim)


class Branchy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def positive(x: torch.Tensor) -> torch.Tensor:
            return torch.sin(self.linear(x)) + 1.0

        def negative(x: torch.Tensor) -> torch.Tensor:
            return torch.cos(x) * self.linear(x)

        return torch.cond(x.sum() > 0, positive, negative, (x,))


def test_torch_cond_becomes_if_and_both_branches_match() -> None:
    torch.manual_seed(0)
    module = Branchy().eval()
    model = from_torch(module, (torch.randn(3, 5),), dynamic_shapes={"x": (0,)})
    assert "If" in _ops(model)
    positive = torch.rand(4, 5) + 0.1
    negative = -torch.rand(2, 5) - 0.1
    for x in (positive, negative):
        (actual,) = _outputs(model, {"x": x.numpy()})
        (expected,) = _torch_outputs(module, x)
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    # The two inputs took different branches in torch itself.
    assert not np.allclose(
        _torch_outputs(module, positive)[0][:2], _torch_outputs(module, -positive)[0][:2]
    )


class Doubler(torch.nn.Module):
    def forward(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        for _ in range(int(steps)):
            x = x * 2.0 + 1.0
        return x


def test_scripted_loop_becomes_loop_with_a_fallback_warning() -> None:
    scripted = torch.jit.script(Doubler())
    with pytest.warns(ExporterFallbackWarning, match="TorchScript"):
        model = from_torch(scripted, (torch.randn(2, 3), torch.tensor(3)))
    assert "Loop" in _ops(model)
    names = [v.name or "" for v in model.graph.inputs]
    assert names == ["x", "steps"]
    for steps in (0, 1, 4):
        x = torch.randn(2, 3)
        (actual,) = _outputs(model, {"x": x.numpy(), "steps": np.array(steps, dtype=np.int64)})
        expected = scripted(x, torch.tensor(steps)).numpy()
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


class DataDependent(torch.nn.Module):
    """Python control flow on a tensor's value: torch.export refuses it, the tracer does not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2.0
        return x - 1.0


def test_falls_back_to_torchscript_where_dynamo_fails_and_says_why() -> None:
    x = torch.ones(2, 3)
    with pytest.warns(ExporterFallbackWarning, match="torch.export failed"):
        model = from_torch(DataDependent(), (x,))
    (actual,) = _outputs(model, {"x": x.numpy()})
    np.testing.assert_allclose(actual, DataDependent()(x).numpy())


def test_no_fallback_warning_where_dynamo_succeeds() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExporterFallbackWarning)
        from_torch(TwoInputs().eval(), (torch.randn(2, 4), torch.randn(2, 3)))


class Eigen(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvals(x).real


def test_model_neither_exporter_converts_raises_unsupported_with_both_reasons() -> None:
    with pytest.warns(ExporterFallbackWarning), pytest.raises(UnsupportedError) as info:
        from_torch(Eigen(), (torch.randn(3, 3),), path="eigen.py")
    error = info.value
    assert error.exit_code == ExitCode.UNSUPPORTED
    text = str(error)
    assert text.startswith("eigen.py: ")
    assert "linalg_eig" in text and "TorchScript exporter failed too" in text
    assert "\n" not in text and "\x1b[" not in text


def test_kwargs_inputs_are_accepted() -> None:
    module = TwoInputs().eval()
    features, bias = torch.randn(2, 4), torch.randn(2, 3)
    model = from_torch(module, {"features": features, "bias": bias})
    (actual,) = _outputs(model, {"features": features.numpy(), "bias": bias.numpy()})
    np.testing.assert_allclose(
        actual, _torch_outputs(module, features, bias)[0], rtol=RTOL, atol=ATOL
    )


def test_exported_program_in_memory() -> None:
    module = TwoInputs().eval()
    args = (torch.randn(2, 4), torch.randn(2, 3))
    program = torch.export.export(module, args)
    model = from_torch(program)
    (actual,) = _outputs(model, {"features": args[0].numpy(), "bias": args[1].numpy()})
    np.testing.assert_allclose(actual, _torch_outputs(module, *args)[0], rtol=RTOL, atol=ATOL)


def test_dynamic_shapes_naming_an_unknown_input() -> None:
    from unframe.shared_ir.errors import BadInputError

    with pytest.raises(BadInputError, match="names images, which the model does not take"):
        from_torch(TwoInputs().eval(), (torch.randn(2, 4), torch.randn(2, 3)), {"images": (0,)})


def test_recurrent_modules_export_with_a_dynamic_length_more_than_once() -> None:
    """torch's dispatch cache made every export after the first unroll nn.GRU (seq fixed)."""
    for attempt in range(2):
        torch.manual_seed(attempt)
        module = torch.nn.GRU(4, 3, batch_first=True).eval()
        example = torch.randn(2, 5, 4)
        dynamic = {"input": {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}}
        with warnings.catch_warnings():
            warnings.simplefilter("error", ExporterFallbackWarning)  # the dynamo path itself
            model = from_torch(module, (example,), dynamic_shapes=dynamic)
        longer = torch.randn(3, 9, 4)
        got = _outputs(model, {model.graph.inputs[0].name: longer.numpy()})
        want = _torch_outputs(module, longer)
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
