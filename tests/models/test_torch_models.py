"""The PyTorch model suite: each zoo model converted and checked against torch's own outputs.

Four paths per model, each compared with the eager source module (rtol 1e-4, atol 1e-5):
PyTorch -> IR run by onnxruntime; PyTorch -> IR -> PyTorch in memory (``to_torch``);
PyTorch -> ``.onnx`` file -> PyTorch module; and PyTorch -> ``.onnx`` -> ``.pt2`` file, the last
two through the public ``unframe.convert``. Inputs at run
time have another batch (and sequence length) than the export's examples, so dynamic axes must
hold. BERT and GPT-2 run where ``transformers`` is installed. A model the backend refuses must be
listed in ``expected_unsupported.py`` with exactly the op types refused; nothing is skipped for
want of a converter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from models.expected_unsupported import convert_or_expect_refusal, unknown_models

torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")

from models import torch_zoo as zoo  # noqa: E402

import unframe  # noqa: E402
from unframe.backends.pytorch import export_program, to_torch  # noqa: E402
from unframe.frontends.pytorch import from_torch  # noqa: E402
from unframe.shared_ir.runner import run_reference  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


NAMES = sorted(zoo.ZOO)


def test_expected_unsupported_names_zoo_models() -> None:
    assert unknown_models("torch_zoo", NAMES) == []
    assert unknown_models("transformers", TRANSFORMERS) == []


def _eager(module: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return module(x).numpy()


def _first(result: Any) -> torch.Tensor:
    return result[0] if isinstance(result, tuple | list) else result


def _assert_matches(rebuilt: Any, module: torch.nn.Module, inputs: list[torch.Tensor]) -> None:
    """The converted module's first output against the source module's, input by input."""
    for x in inputs:
        with torch.no_grad():
            actual = _first(rebuilt(x)).numpy()
        np.testing.assert_allclose(actual, _eager(module, x), rtol=RTOL, atol=ATOL)


def _inputs_per_branch(entry: Any, batch: int, seed: int) -> list[torch.Tensor]:
    """One input of ``batch``; for ``cond`` two, one per branch of its torch.cond."""
    x = entry.inputs(batch, seed=seed)[0]
    if entry.name == "cond":
        return [x.abs() + 0.1, -x.abs() - 0.1]
    return [x]


def _run_inputs(entry: Any) -> list[torch.Tensor]:
    """Run-time inputs: a batch (and, where dynamic, a length) unlike the export's examples."""
    inputs = _inputs_per_branch(entry, 3, seed=7)
    if 1 in entry.dynamic.get("x", ()):
        longer = list(entry.input_shape(2))
        longer[1] += 3
        inputs.append(torch.randn(*longer, generator=torch.Generator().manual_seed(9)))
    return inputs


_CACHE: dict[str, ir.Model] = {}


def _ir(name: str) -> ir.Model:
    """The frontend's IR of a zoo model, exported once per session (at batch 2)."""
    if name not in _CACHE:
        entry = zoo.ZOO[name]
        _CACHE[name] = from_torch(entry.model(), entry.inputs(2), dynamic_shapes=entry.dynamic)
    return _CACHE[name]


@pytest.mark.parametrize("name", NAMES)
def test_frontend_matches_torch(name: str) -> None:
    entry = zoo.ZOO[name]
    module = entry.model()
    model = _ir(name)
    shape = model.graph.inputs[0].shape
    assert shape is not None and isinstance(shape[0], ir.SymbolicDim)
    for x in _run_inputs(entry):
        result = run_reference(model, {"x": x.numpy()})
        assert result.engine == "onnxruntime", result.fallback_reason
        actual = next(iter(result.outputs.values()))
        np.testing.assert_allclose(actual, _eager(module, x), rtol=RTOL, atol=ATOL)


def test_cond_model_keeps_an_if() -> None:
    assert any(node.op_type == "If" for node in _ir("cond").graph)


@pytest.mark.parametrize("name", NAMES)
def test_ir_to_torch_roundtrip(name: str) -> None:
    entry = zoo.ZOO[name]
    model = _ir(name)
    rebuilt = convert_or_expect_refusal(f"torch_zoo/{name}", "pytorch", lambda: to_torch(model))
    if rebuilt is None:
        return  # refused exactly as the table expects
    module = entry.model()
    _assert_matches(rebuilt, module, _run_inputs(entry))


_ONNX_FILES: dict[str, Path] = {}


def _factory_to_onnx(name: str, factory: pytest.TempPathFactory) -> Path:
    """``unframe.convert`` of the zoo factory into an ``.onnx`` file (batch 2), once a session."""
    if name not in _ONNX_FILES:
        entry = zoo.ZOO[name]
        dims = ",".join(str(d) for d in entry.input_shape(2))
        path = factory.mktemp("onnx") / f"{name}.onnx"
        result = unframe.convert(
            f"py:{zoo.__file__}:{name}", path, inputs=[f"x={dims}"], dynamic=entry.dynamic
        )
        assert result.ok and path.exists()
        _ONNX_FILES[name] = path
    return _ONNX_FILES[name]


@pytest.mark.parametrize("name", NAMES)
def test_onnx_file_roundtrip(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """factory -> ``.onnx`` file (``unframe.convert``) -> ``unframe.load`` -> ``to_torch``."""
    onnx_path = _factory_to_onnx(name, tmp_path_factory)
    model = unframe.load(onnx_path)
    rebuilt = convert_or_expect_refusal(f"torch_zoo/{name}", "pytorch", lambda: to_torch(model))
    if rebuilt is None:
        return  # refused exactly as the table expects
    entry = zoo.ZOO[name]
    module = entry.model()
    _assert_matches(rebuilt, module, _run_inputs(entry))


def _assert_pt2_matches(
    name: str,
    folder: Path,
    factory: pytest.TempPathFactory,
    sized: bool,
    inputs: list[torch.Tensor],
) -> None:
    """``.onnx`` -> ``.pt2`` with ``unframe.convert``, loaded back by plain torch and run on
    ``inputs`` against the source module; or refused exactly as ``expected_unsupported`` says.
    """
    onnx_path = _factory_to_onnx(name, factory)
    pt2_path = folder / f"{name}.pt2"
    entry = zoo.ZOO[name]
    dims = ",".join(str(d) for d in entry.input_shape(2))
    result = convert_or_expect_refusal(
        f"torch_zoo/{name}",
        "pytorch",
        lambda: unframe.convert(onnx_path, pt2_path, inputs=[f"x={dims}"] if sized else None),
    )
    if result is None:
        assert not pt2_path.exists(), "a refused conversion wrote its output"
        return
    assert result.ok and pt2_path.exists()
    rebuilt = torch.export.load(pt2_path).module()  # our own file, just written
    _assert_matches(rebuilt, entry.model(), inputs)


@pytest.mark.parametrize("name", NAMES)
def test_pt2_file_roundtrip(
    name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """factory -> ``.onnx`` -> ``.pt2`` (``--input`` at the source's example shape), run by torch."""
    inputs = _inputs_per_branch(zoo.ZOO[name], 2, seed=11)
    _assert_pt2_matches(name, tmp_path, tmp_path_factory, sized=True, inputs=inputs)


@pytest.mark.parametrize("name", NAMES)
def test_pt2_file_keeps_dynamic_axes(
    name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``.onnx`` (symbolic axes) -> ``.pt2`` without ``--input``: other sizes must still run."""
    inputs = _run_inputs(zoo.ZOO[name])
    _assert_pt2_matches(name, tmp_path, tmp_path_factory, sized=False, inputs=inputs)


def test_an_earlier_export_in_the_process_does_not_fix_the_gru_batch(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Dynamo caches traced bodies per code object, guards and all: after these two exports the
    zoo GRU's ``.pt2`` came out with its batch fixed at 2 (``Guard failed: x.size()[0] == 2``)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weights = [
        numpy_helper.from_array(rng.standard_normal((1, 9, 4)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, 9, 3)).astype(np.float32), "R"),
    ]
    fixed = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R", "", "lens"], ["Y"], hidden_size=3)],
        "fixed_batch_gru",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 2, 4]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, [2]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        weights,
    )
    fused = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=3, linear_before_reset=1)],
        "fused_gru",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", "batch", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        weights,
    )
    for graph in (fixed, fused):
        model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))
        export_program(model, module=to_torch(model))
    test_pt2_file_keeps_dynamic_axes("gru", tmp_path, tmp_path_factory)


# -- transformers (BERT, GPT-2), only where the package is installed ---------------------------


def _tiny_bert() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def _tiny_gpt2() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.GPT2Config(
        vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4, use_cache=False
    )
    torch.manual_seed(0)
    return transformers.GPT2Model(config).eval()


class _LastHidden(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids).last_hidden_state


TRANSFORMERS: dict[str, Callable[[], torch.nn.Module]] = {"bert": _tiny_bert, "gpt2": _tiny_gpt2}


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformers_models(name: str) -> None:
    module = _LastHidden(TRANSFORMERS[name]()).eval()
    ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    model = from_torch(module, (ids,), dynamic_shapes={"input_ids": (0, 1)})
    other = torch.randint(0, 100, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(other).numpy()
    result = run_reference(model, {"input_ids": other.numpy()})
    np.testing.assert_allclose(next(iter(result.outputs.values())), expected, rtol=RTOL, atol=ATOL)
    rebuilt = convert_or_expect_refusal(f"transformers/{name}", "pytorch", lambda: to_torch(model))
    if rebuilt is None:
        return  # refused exactly as the table expects
    with torch.no_grad():
        actual = _first(rebuilt(other)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
