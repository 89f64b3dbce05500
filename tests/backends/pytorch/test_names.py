"""Every ONNX name converts to PyTorch, and the original names stay recoverable.

Initializer names become ``nn.Module`` attributes, so names such as ``to``, ``state_dict`` or
``_modules`` must not collide with what a module already has; nor may unicode, dots, leading
digits, keywords or names that only differ in characters sanitization drops. The model below
carries all of them (initializers, intermediate values, inputs, outputs, node names and a
subgraph's initializers); onnxruntime on the source is the oracle.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

import unframe  # noqa: E402
from unframe.backends.pytorch import to_torch  # noqa: E402
from unframe.backends.pytorch.driver import ONNX_NAME, SOURCE_NAMES  # noqa: E402
from unframe.backends.pytorch.pt2_file import source_names  # noqa: E402

#: Names of ``nn.Module`` / ``fx.GraphModule`` members, keywords, builtins, unicode, dots, digits,
#: names that collide once sanitized, names torch.onnx gives its own values (val_<n>), and two
#: long names equal in their first 64 characters.
INITIALIZER_NAMES = [
    "to", "cuda", "parameters", "state_dict", "_modules", "register_buffer", "add_module",
    "forward", "meta", "graph", "code", "training", "_parameters", "__init__", "__class__",
    "class", "lambda", "None", "self", "torch", "print", "1abc", "0", "a.b", "a_b", "a-b", "a b",
    "é", "日本語", "Ω.weight", "_", "__", ".", "val_0", "val_25", "w" * 70 + "1", "w" * 70 + "2",
]  # fmt: skip
#: Names of intermediate values (unique against the initializers, as ONNX requires; an empty name
#: means an absent value in ONNX, so only node names are left empty).
VALUE_NAMES = [
    "buffers", "named_modules", "apply", "eval", "def", "3.x", "日本", "x.y.z", "_buffers",
]  # fmt: skip
THEN_NAMES = ["children", "_forward_hooks"]
ELSE_NAMES = ["zero_grad", "half"]
INPUT_NAMES = ["class.input", "日本.x"]
OUTPUT_NAME = "to.out"


def _weight(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(4).astype(np.float32)


def _branch(label: str, names: list[str], feed: str, rng: np.random.Generator) -> onnx.GraphProto:
    nodes = []
    previous = feed
    for index, name in enumerate(names):
        output = f"{label}.{index}"
        nodes.append(helper.make_node("Mul", [previous, name], [output], name=name))
        previous = output
    inits = [numpy_helper.from_array(_weight(rng), name) for name in names]
    return helper.make_graph(
        nodes,
        label,
        [],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [2, 4])],
        inits,
    )


def hostile_names_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    x, other = INPUT_NAMES
    nodes = [helper.make_node("Mul", [x, other], ["start"], name="")]
    previous = "start"
    value_names = iter(VALUE_NAMES)
    for index, name in enumerate(INITIALIZER_NAMES):
        # Every third step produces a value with a hostile name; the others one with a plain name.
        produced = (next(value_names, None) if index % 3 == 0 else None) or f"t{index}"
        op = "Add" if index % 2 else "Mul"
        nodes.append(helper.make_node(op, [previous, name], [produced], name=name))
        previous = produced
    nodes.append(
        helper.make_node(
            "If",
            ["cond"],
            ["branch"],
            name="to.if",
            then_branch=_branch("then", THEN_NAMES, previous, rng),
            else_branch=_branch("else", ELSE_NAMES, previous, rng),
        )
    )
    nodes.append(helper.make_node("Tanh", ["branch"], [OUTPUT_NAME], name="__init__.tanh"))
    initializers = [numpy_helper.from_array(_weight(rng), name) for name in INITIALIZER_NAMES]
    graph = helper.make_graph(
        nodes,
        "to",
        [
            helper.make_tensor_value_info(x, TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info(other, TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [2, 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _feeds(flag: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        INPUT_NAMES[0]: rng.standard_normal((2, 4)).astype(np.float32),
        INPUT_NAMES[1]: rng.standard_normal((2, 4)).astype(np.float32),
        "cond": np.array(flag),
    }


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, feeds)
    return np.asarray(output)


def _initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                for tensor in attribute.g.initializer:
                    arrays[tensor.name] = numpy_helper.to_array(tensor)
    return arrays


def test_hostile_names_convert_to_pt2_and_match_onnxruntime(tmp_path: Path) -> None:
    model = hostile_names_model()
    source = tmp_path / "names.onnx"
    onnx.save(model, source)
    target = tmp_path / "names.pt2"
    result = unframe.convert(source, target, validate=True)
    assert result.validation is not None and result.validation.ok

    # The file runs with plain torch, on both branches, as onnxruntime runs the source.
    program = torch.export.load(str(target)).module()
    for flag in (True, False):
        feeds = _feeds(flag)
        want = _onnxruntime(model, feeds)
        (got,) = program(*(torch.from_numpy(a) for a in feeds.values()))
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)

    # Each state_dict key maps back to the ONNX initializer whose values it holds.
    names = source_names(target)
    assert names["inputs"] == [*INPUT_NAMES, "cond"]
    assert names["outputs"] == [OUTPUT_NAME]
    arrays = _initializer_arrays(model)
    assert sorted(names["initializers"].values()) == sorted(arrays)
    state = torch.export.load(str(target)).state_dict
    assert set(names["initializers"]) == set(state)
    # torch.onnx names the values it creates val_<n> without checking them against the weights'
    # names, so a weight of that form breaks reading the file back (see test_readback.py).
    assert not [key for key in state if re.fullmatch(r"val_\d+", key)]
    for key, onnx_name in names["initializers"].items():
        np.testing.assert_array_equal(state[key].detach().numpy(), arrays[onnx_name])


def test_graph_module_keeps_onnx_names_in_meta() -> None:
    model = hostile_names_model()
    module = to_torch(ir.from_proto(model))
    compile(module.code, "<generated>", "exec")

    arrays = _initializer_arrays(model)
    mapping = module.meta[SOURCE_NAMES]
    assert sorted(mapping["initializers"].values()) == sorted(arrays)
    tensors = dict(module.state_dict())
    for key, onnx_name in mapping["initializers"].items():
        np.testing.assert_array_equal(tensors[key].detach().numpy(), arrays[onnx_name])
    assert sorted(mapping["inputs"].values()) == sorted([*INPUT_NAMES, "cond"])

    # Nodes of the top graph name the ONNX values they yield (inputs, weights, hostile values).
    named = {node.meta.get(ONNX_NAME) for node in module.graph.nodes}
    top_level = set(INITIALIZER_NAMES) | {n for n in VALUE_NAMES if n} | set(INPUT_NAMES)
    assert top_level | {"cond", "branch", OUTPUT_NAME} <= named

    for flag in (True, False):
        feeds = _feeds(flag)
        (got,) = module(*(torch.from_numpy(a) for a in feeds.values()))
        np.testing.assert_allclose(
            got.detach().numpy(), _onnxruntime(model, feeds), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", ["to", "cuda", "state_dict", "_modules", "register_buffer"])
def test_module_member_names_do_not_shadow_the_module(name: str) -> None:
    """An initializer named like a method leaves the method callable and the weight reachable."""
    weight = np.arange(4, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", name], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(weight, name)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    module = to_torch(ir.from_proto(model))
    assert module.to(torch.float64) is module  # still nn.Module.to
    assert isinstance(module.state_dict(), dict)
    (key,) = [k for k, v in module.meta[SOURCE_NAMES]["initializers"].items() if v == name]
    np.testing.assert_array_equal(module.get_parameter(key).detach().numpy(), weight)
