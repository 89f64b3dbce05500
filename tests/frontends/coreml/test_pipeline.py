"""Core ML pipelines built by coremltools' own builders (``Pipeline``, ``PipelineClassifier``,
``NeuralNetworkBuilder``) import as one graph, and run in onnxruntime to numpy's computation of
their layers from the builders' weights; a stage of a type the frontend does not read is refused
by index and type, and spec versions newer than the frontend reads are refused by number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from unframe.backends.coreml.native import coremltools, quiet_stderr
from unframe.backends.coreml.native.reading import NEWEST_SPEC_VERSION
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.errors import BadInputError, UnsupportedError, UnsupportedOpsError

LABELS = ["cat", "dog", "fish"]


def _builders() -> tuple[Any, Any, Any]:
    coremltools()
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.pipeline import Pipeline, PipelineClassifier

    return datatypes, NeuralNetworkBuilder, (Pipeline, PipelineClassifier)


def _stages(rng: np.random.Generator) -> tuple[Any, Any, dict[str, np.ndarray]]:
    """A preprocessing net (per-channel scale and bias, then ReLU) and a classifier net (flatten,
    inner product, softmax) reading its output feature ``h``."""
    datatypes, builder, _ = _builders()
    weights = {
        "scale": rng.uniform(0.5, 2.0, 3).astype(np.float32),
        "shift": rng.normal(size=3).astype(np.float32),
        "W": rng.normal(size=(3, 12)).astype(np.float32),
        "b": rng.normal(size=3).astype(np.float32),
    }
    pre = builder([("x", datatypes.Array(3, 2, 2))], [("h", datatypes.Array(3, 2, 2))])
    pre.add_scale(
        "norm", W=weights["scale"], b=weights["shift"], has_bias=True, input_name="x",
        output_name="n", shape_scale=[3], shape_bias=[3],
    )  # fmt: skip
    pre.add_activation("relu", "RELU", "n", "h")
    clf = builder(
        [("h", datatypes.Array(3, 2, 2))], [("probs", datatypes.Array(3))], mode="classifier"
    )
    clf.add_flatten("flat", 0, "h", "f")  # mode 0: CHANNEL_FIRST
    clf.add_inner_product(
        "fc", W=weights["W"], b=weights["b"], input_channels=12, output_channels=3,
        has_bias=True, input_name="f", output_name="logits",
    )  # fmt: skip
    clf.add_softmax("softmax", "logits", "probs")
    clf.set_class_labels(LABELS, predicted_feature_name="label", prediction_blob="probs")
    return pre.spec, clf.spec, weights


def _numpy_pipeline(x: np.ndarray, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``h`` and the class probabilities of one (3, 2, 2) sample, computed from the weights."""
    h = np.maximum(x * w["scale"][:, None, None] + w["shift"][:, None, None], 0.0)
    logits = w["W"] @ h.reshape(-1) + w["b"]
    e = np.exp(logits - logits.max())
    return h, e / e.sum()


def _save(spec: Any, path: Path) -> Path:
    path.write_bytes(spec.SerializeToString())
    return path


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    proto = ir.to_proto(model)
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString())
    names = [out.name for out in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_pipeline_classifier_of_two_networks_matches_numpy(tmp_path: Path) -> None:
    datatypes, _, (_, pipeline_classifier) = _builders()
    rng = np.random.default_rng(0)
    pre, clf, weights = _stages(rng)
    pipeline = pipeline_classifier(
        [("x", datatypes.Array(3, 2, 2))], LABELS,
        output_features=[("label", datatypes.String()),
                         ("probs", datatypes.Dictionary(datatypes.String()))],
    )  # fmt: skip
    pipeline.add_model(pre)
    pipeline.add_model(clf)
    model = load_coreml(_save(pipeline.spec, tmp_path / "classifier.mlmodel"))

    assert [v.name for v in model.graph.inputs] == ["x"]
    assert [v.name for v in model.graph.outputs] == ["label", "probs"]
    node_names = [node.name for node in model.graph]
    assert {"stage0/norm", "stage0/relu", "stage1/fc", "stage1/softmax"} <= set(node_names)
    assert all(name.startswith(("stage0/", "stage1/")) for name in node_names)
    # The double input is cast to float32 once; h passes between the stages as float32.
    assert [node.name for node in model.graph if node.op_type == "Cast"] == ["stage0/x_cast"]
    for _ in range(3):
        x = rng.normal(size=(1, 3, 2, 2))  # the pipeline's input is a double array
        found = _run(model, {"x": x})
        _, expected = _numpy_pipeline(x[0], weights)
        np.testing.assert_allclose(found["probs"][0], expected, rtol=1e-5, atol=1e-6)
        assert found["label"].tolist() == [LABELS[int(np.argmax(expected))]]


def test_pipeline_keeps_the_feature_between_stages_as_an_output(tmp_path: Path) -> None:
    datatypes, _, (pipeline_class, _) = _builders()
    rng = np.random.default_rng(1)
    pre, clf, weights = _stages(rng)
    pipeline = pipeline_class(
        [("x", datatypes.Array(3, 2, 2))],
        [("h", datatypes.Array(3, 2, 2)), ("label", datatypes.String()),
         ("probs", datatypes.Array(3))],
    )  # fmt: skip
    pipeline.add_model(pre)
    pipeline.add_model(clf)
    model = load_coreml(_save(pipeline.spec, tmp_path / "plain.mlmodel"))

    assert [v.name for v in model.graph.outputs] == ["h", "label", "probs"]
    x = rng.normal(size=(1, 3, 2, 2))
    found = _run(model, {"x": x})
    h, probabilities = _numpy_pipeline(x[0], weights)
    np.testing.assert_allclose(found["h"][0], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(found["probs"][0], probabilities, rtol=1e-5, atol=1e-6)


def test_pipeline_regressor_with_a_nested_pipeline_stage_matches_numpy(tmp_path: Path) -> None:
    datatypes, builder, (pipeline_class, _) = _builders()
    from coremltools.models.pipeline import PipelineRegressor

    rng = np.random.default_rng(5)
    pre, _, weights = _stages(rng)
    inner = pipeline_class([("x", datatypes.Array(3, 2, 2))], [("h", datatypes.Array(3, 2, 2))])
    inner.add_model(pre)
    head = rng.normal(size=(1, 12)).astype(np.float32)
    regressor = builder(
        [("h", datatypes.Array(3, 2, 2))], [("y", datatypes.Array(1))], mode="regressor"
    )
    regressor.add_flatten("flat", 0, "h", "f")
    regressor.add_inner_product(
        "head", W=head, b=None, input_channels=12, output_channels=1, has_bias=False,
        input_name="f", output_name="y",
    )  # fmt: skip
    pipeline = PipelineRegressor([("x", datatypes.Array(3, 2, 2))], [("y", datatypes.Double())])
    pipeline.add_model(inner.spec)
    pipeline.add_model(regressor.spec)
    # Stage names label the nodes; a repeated one gives way to the stage's index.
    pipeline.spec.pipelineRegressor.pipeline.names.extend(["prep", "prep"])
    model = load_coreml(_save(pipeline.spec, tmp_path / "regressor.mlmodel"))

    assert {"prep/stage0/norm", "stage1/head"} <= {node.name for node in model.graph}
    x = rng.normal(size=(1, 3, 2, 2))
    h, _ = _numpy_pipeline(x[0], weights)
    found = _run(model, {"x": x})
    np.testing.assert_allclose(found["y"].reshape(-1), head @ h.reshape(-1), rtol=1e-5, atol=1e-6)


def _tree_ensemble_spec() -> Any:
    coremltools()
    from coremltools.models.tree_ensemble import TreeEnsembleRegressor

    tree = TreeEnsembleRegressor(features=["f"], target="y")
    tree.add_branch_node(0, 0, 0, 0.5, "BranchOnValueLessThan", 1, 2)
    tree.add_leaf_node(0, 1, 1.0)
    tree.add_leaf_node(0, 2, 2.0)
    return tree.spec


def test_pipeline_with_an_unsupported_stage_names_its_index_and_type(tmp_path: Path) -> None:
    datatypes, _, (pipeline_class, _) = _builders()
    pre, clf, _ = _stages(np.random.default_rng(2))
    clf.neuralNetworkClassifier.layers[0].permute.axis.extend([0, 1, 3, 2])  # no reader
    pipeline = pipeline_class([("x", datatypes.Array(3, 2, 2))], [("y", datatypes.Double())])
    pipeline.add_model(pre)
    pipeline.add_model(clf)
    pipeline.add_model(_tree_ensemble_spec())
    with pytest.raises(UnsupportedOpsError) as caught:
        load_coreml(_save(pipeline.spec, tmp_path / "mixed.mlmodel"))
    listed = {(op.node, op.op_type) for op in caught.value.ops}
    assert listed == {("stage 2 (stage2)", "treeEnsembleRegressor"), ("stage1/flat", "permute")}
    assert caught.value.exit_code == 3
    assert "treeEnsembleRegressor" in str(caught.value)


def _network_spec(version: int) -> Any:
    pre, _, _ = _stages(np.random.default_rng(3))
    pre.specificationVersion = version
    return pre


def test_spec_newer_than_read_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = _save(_network_spec(NEWEST_SPEC_VERSION + 1), tmp_path / "future.mlmodel")
    with pytest.raises(UnsupportedError) as caught:
        load_coreml(path)
    message = str(caught.value)
    assert f"specification version {NEWEST_SPEC_VERSION + 1}" in message
    assert f"versions 1 to {NEWEST_SPEC_VERSION}" in message
    assert caught.value.exit_code == 3


def test_pipeline_stage_newer_than_read_is_refused(tmp_path: Path) -> None:
    datatypes, _, (pipeline_class, _) = _builders()
    pipeline = pipeline_class([("x", datatypes.Array(3, 2, 2))], [("h", datatypes.Array(3, 2, 2))])
    pipeline.add_model(_network_spec(NEWEST_SPEC_VERSION + 3))
    with pytest.raises(UnsupportedError, match=r"stage 0 .*version 13") as caught:
        load_coreml(_save(pipeline.spec, tmp_path / "stage.mlmodel"))
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("version", [1, NEWEST_SPEC_VERSION])
def test_oldest_and_newest_spec_versions_import(tmp_path: Path, version: int) -> None:
    rng = np.random.default_rng(4)
    spec = _network_spec(version)
    model = load_coreml(_save(spec, tmp_path / f"v{version}.mlmodel"))
    layer = spec.neuralNetwork.layers[0].scale
    scale = np.asarray(layer.scale.floatValue, np.float32)[:, None, None]
    shift = np.asarray(layer.bias.floatValue, np.float32)[:, None, None]
    x = rng.normal(size=(1, 3, 2, 2))
    found = _run(model, {"x": x})
    np.testing.assert_allclose(found["h"], np.maximum(x * scale + shift, 0), rtol=1e-6, atol=1e-6)


def _program_pipeline(folder: Path, rng: np.random.Generator) -> tuple[Path, dict[str, Any]]:
    """``coremltools.utils.make_pipeline`` of two ML Programs (weights large enough to live in
    each stage's weight file): h = relu(x @ A.T + a), y = h @ B.T."""
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb

    weights = {
        "A": rng.normal(size=(32, 16)).astype(np.float32),
        "a": rng.normal(size=32).astype(np.float32),
        "B": rng.normal(size=(8, 32)).astype(np.float32),
    }

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 16))])
    def first(x: Any) -> Any:
        return mb.relu(x=mb.linear(x=x, weight=weights["A"], bias=weights["a"]), name="h")

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 32))])
    def second(h: Any) -> Any:
        return mb.linear(x=h, weight=weights["B"], name="y")

    with quiet_stderr():
        stages = [
            ct.convert(
                program,
                convert_to="mlprogram",
                compute_precision=ct.precision.FLOAT32,
                skip_model_load=True,
            )
            for program in (first, second)
        ]
        path = folder / "programs.mlpackage"
        ct.utils.make_pipeline(*stages).save(str(path))
    return path, weights


def test_pipeline_of_ml_programs_from_make_pipeline_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    path, w = _program_pipeline(tmp_path, rng)
    assert len(list(path.rglob("*.bin"))) == 2  # each stage's weights in a file of its own
    model = load_coreml(path)
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert [v.name for v in model.graph.outputs] == ["y"]
    x = rng.normal(size=(2, 16)).astype(np.float32)
    expected = np.maximum(x @ w["A"].T + w["a"], 0) @ w["B"].T
    np.testing.assert_allclose(_run(model, {"x": x})["y"], expected, rtol=1e-5, atol=1e-5)


def test_pipeline_stage_missing_its_weight_file_is_bad_input(tmp_path: Path) -> None:
    path, _ = _program_pipeline(tmp_path, np.random.default_rng(7))
    removed = sorted(path.rglob("*.bin"))[-1]
    removed.unlink()
    with pytest.raises(BadInputError, match=rf"pipeline stage \d .*{removed.name}") as caught:
        load_coreml(path)
    assert caught.value.exit_code == 2
