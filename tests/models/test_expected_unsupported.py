"""The expected-unsupported table's check fails on every way the table can go stale.

Refusals here are real: the PyTorch backend's ``to_torch`` on a model with an op no framework
defines (``com.example::Frobnicate``), and on a plain ``Relu`` model that it converts.
"""

from __future__ import annotations

import onnx_ir as ir
import pytest
from models import expected_unsupported as table
from onnx import TensorProto, helper

pytest.importorskip("torch", reason="the pytorch extra is not installed")

from unframe.backends.pytorch import to_torch  # noqa: E402


def _model(*, frobnicate: bool) -> ir.Model:
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="relu")]
    if frobnicate:
        nodes.append(helper.make_node("Frobnicate", ["t"], ["y"], domain="com.example", name="f"))
    else:
        nodes.append(helper.make_node("Neg", ["t"], ["y"], name="neg"))
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]
    return ir.from_proto(helper.make_model(graph, opset_imports=opsets))


def _list(monkeypatch: pytest.MonkeyPatch, *ops: str) -> None:
    refusal = table.Refusal(frozenset(ops), "a probe of the check")
    monkeypatch.setitem(table.EXPECTED_UNSUPPORTED, ("torch_zoo/probe", "pytorch"), refusal)


def test_a_listed_refusal_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    _list(monkeypatch, "com.example::Frobnicate")
    model = _model(frobnicate=True)
    assert (
        table.convert_or_expect_refusal("torch_zoo/probe", "pytorch", lambda: to_torch(model))
        is None
    )


def test_an_unlisted_model_that_converts_returns_the_result() -> None:
    model = _model(frobnicate=False)
    module = table.convert_or_expect_refusal("torch_zoo/probe", "pytorch", lambda: to_torch(model))
    assert module is not None


def test_an_unlisted_refusal_fails() -> None:
    model = _model(frobnicate=True)
    with pytest.raises(
        pytest.fail.Exception, match=r"com\.example::Frobnicate.*add the converters"
    ):
        table.convert_or_expect_refusal("torch_zoo/probe", "pytorch", lambda: to_torch(model))


def test_a_listed_model_that_now_converts_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _list(monkeypatch, "com.example::Frobnicate")
    model = _model(frobnicate=False)
    with pytest.raises(
        pytest.fail.Exception, match="now converts torch_zoo/probe.*delete its line"
    ):
        table.convert_or_expect_refusal("torch_zoo/probe", "pytorch", lambda: to_torch(model))


def test_a_refusal_of_other_ops_than_listed_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _list(monkeypatch, "com.example::Frobnicate", "Neg")
    model = _model(frobnicate=True)
    with pytest.raises(AssertionError, match="correct its line"):
        table.convert_or_expect_refusal("torch_zoo/probe", "pytorch", lambda: to_torch(model))


def test_misspelt_and_unknown_lines_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    refusal = table.Refusal(frozenset({"Foo"}), "a probe of the check")
    monkeypatch.setitem(table.EXPECTED_UNSUPPORTED, ("torchzoo/resnet", "pytorch"), refusal)
    monkeypatch.setitem(table.EXPECTED_UNSUPPORTED, ("torch_zoo/resnet", "pytroch"), refusal)
    monkeypatch.setitem(table.EXPECTED_UNSUPPORTED, ("torch_zoo/resnot", "pytorch"), refusal)
    assert table.misspelt_lines(["pytorch"]) == [
        ("torch_zoo/resnet", "pytroch"),
        ("torchzoo/resnet", "pytorch"),
    ]
    assert table.unknown_models("torch_zoo", ["resnet"]) == ["torch_zoo/resnot"]
