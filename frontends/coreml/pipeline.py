"""Imports a Core ML pipeline (Pipeline, PipelineClassifier, PipelineRegressor) stage by stage.

Each stage is a model of its own: a NeuralNetwork(-Classifier/-Regressor) is converted as a lone
``.mlmodel`` is (``neural_network.py``), an ML Program stage of a pipeline package (what
``coremltools.utils.make_pipeline`` writes) as a lone package is, a nested pipeline as this one. The stages' graphs are then
chained into one by feature name: a stage input that an earlier stage writes (or that an earlier
stage also reads) becomes that value; any other is an input of the pipeline. Feature names are
kept; every node is named after its stage (``stage0/<layer>``, or the pipeline's own stage name),
and an internal value whose name another stage already uses takes that prefix too. Every stage
of a model type the frontend does not read, and every layer no converter reads, is listed at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.native.reading import (
    NEURAL_NETWORK_TYPES,
    PIPELINE_TYPES,
    check_spec_version,
)
from unframe.frontends.coreml.context import FRAMEWORK, OPSET, user_metadata
from unframe.frontends.coreml.neural_network import import_neural_network
from unframe.shared_ir.errors import BadInputError, UnsupportedOp, UnsupportedOpsError

PIPELINE_DOMAIN = "coreml.pipeline"


def import_pipeline(
    spec: Any, where: str, read_program: Callable[[Any, str], ir.Model]
) -> ir.Model:
    """Converts a Pipeline, PipelineClassifier or PipelineRegressor spec whose stages all convert.

    ``read_program(stage, what)`` converts an ML Program stage (``what`` names it in messages).

    Raises:
        UnsupportedOpsError: every stage of a model type not read (by index and type) and every
            layer of a stage that no converter reads, listed at once (exit 3).
        BadInputError: a stage reading a feature that neither the pipeline nor an earlier stage
            provides, or a pipeline output no stage writes.
    """
    kind = spec.WhichOneof("Type")
    pipeline = spec.pipeline if kind == "pipeline" else getattr(spec, kind).pipeline
    stage_names = list(pipeline.names)
    labels: list[str] = []
    for i in range(len(pipeline.models)):
        given = stage_names[i] if i < len(stage_names) else ""
        # Node names start with the stage's: a repeated or empty stage name takes its index.
        labels.append(given if given and given not in labels else f"stage{i}")
    stages: list[tuple[str, ir.Model]] = []
    failures: list[UnsupportedOp] = []
    for index, (label, stage) in enumerate(zip(labels, pipeline.models, strict=True)):
        check_spec_version(stage, where, f"pipeline stage {index} ({label})")
        stage_kind = stage.WhichOneof("Type") or "empty"
        try:
            if stage_kind in NEURAL_NETWORK_TYPES:
                stages.append((label, import_neural_network(stage, where)))
            elif stage_kind == "mlProgram":
                stages.append((label, read_program(stage, f"pipeline stage {index} ({label})")))
            elif stage_kind in PIPELINE_TYPES:
                stages.append((label, import_pipeline(stage, where, read_program)))
            else:
                why = (
                    "a pipeline stage of a model type the coreml frontend does not read (it "
                    "reads ML Program, NeuralNetwork, NeuralNetworkClassifier, "
                    "NeuralNetworkRegressor and pipeline stages)"
                )
                node = f"stage {index} ({label})"
                failures.append(UnsupportedOp(node, stage_kind, PIPELINE_DOMAIN, reason=why))
        except UnsupportedOpsError as error:
            failures.extend(
                UnsupportedOp(f"{label}/{op.node}", op.op_type, op.domain, op.opset, op.reason)
                for op in error.ops
            )
    if failures:
        raise UnsupportedOpsError(failures, framework=FRAMEWORK, direction="import", path=where)
    return _chain(spec, kind, stages, where)


def _chain(spec: Any, kind: str, stages: list[tuple[str, ir.Model]], where: str) -> ir.Model:
    """One graph of the stages' graphs, each stage's inputs bound to the features before it."""
    pipeline_inputs = {feature.name for feature in spec.description.input}
    inputs: list[ir.Value] = []
    nodes: list[ir.Node] = []
    initializers: list[ir.Value] = []
    features: dict[str, ir.Value] = {}
    # Internal values keep clear of every feature's name, so that features keep theirs.
    taken: set[str] = set(pipeline_inputs)
    taken.update(feature.name for feature in spec.description.output)
    taken.update(value.name or "" for _, model in stages for value in model.graph.outputs)
    metadata: dict[str, str] = {}
    for label, model in stages:
        graph = model.graph
        metadata.update(model.metadata_props)
        stage_inputs, stage_outputs = list(graph.inputs), list(graph.outputs)
        stage_nodes, stage_initializers = list(graph), list(graph.initializers.values())
        # A value belongs to one graph: the stage's graph lets go of everything first.
        graph.inputs.clear()
        graph.outputs.clear()
        graph.initializers.clear()
        graph.remove(stage_nodes)
        feeds: list[ir.Node] = []
        for value in stage_inputs:
            name = value.name or ""
            source = features.get(name)
            if source is None:
                if name not in pipeline_inputs:
                    raise BadInputError(
                        f"pipeline stage {label!r} reads feature {name!r}, which neither the "
                        "pipeline's inputs nor an earlier stage provide",
                        path=where, framework=FRAMEWORK,
                    )  # fmt: skip
                inputs.append(value)
                features[name] = value
                continue
            if _casts_back_to(value, source, stage_outputs):
                # The stage declares a double input and casts it to float32 straight away: the
                # float32 feature feeds those casts' readers directly.
                for cast in [use.node for use in value.uses()]:
                    cast.outputs[0].replace_all_uses_with(source)
                    stage_nodes.remove(cast)
                continue
            if value.dtype is not None and source.dtype is not None and value.dtype != source.dtype:
                cast = ir.Node(
                    "", "Cast", [source], [ir.Attr("to", ir.AttributeType.INT, value.dtype)],
                    name=f"{label}/{name}/cast",
                )  # fmt: skip
                cast.outputs[0].name = name
                _claim_free_name(cast.outputs[0], label, taken)
                cast.outputs[0].dtype, cast.outputs[0].shape = value.dtype, source.shape
                feeds.append(cast)
                source = cast.outputs[0]
            value.replace_all_uses_with(source)
        written = {id(value) for value in stage_outputs}
        for node in stage_nodes:
            node.name = f"{label}/{node.name}" if node.name else f"{label}/{node.op_type}"
            for value in node.outputs:
                if id(value) not in written:
                    _claim_free_name(value, label, taken)
        for value in stage_initializers:
            _claim_free_name(value, label, taken)
        nodes.extend(feeds + stage_nodes)
        initializers.extend(stage_initializers)
        for value in stage_outputs:
            name = value.name or ""
            if name in features:
                # A later stage writes a feature again: its new value takes the stage's prefix.
                _claim_free_name(value, label, taken)
            features[name] = value
    outputs = []
    for feature in spec.description.output:
        found = features.get(feature.name)
        if found is None:
            raise BadInputError(
                f"pipeline output {feature.name!r} is written by no stage",
                path=where, framework=FRAMEWORK,
            )  # fmt: skip
        if found.name != feature.name or found in outputs or found in inputs:
            identity = ir.Node("", "Identity", [found], name=f"{feature.name}/identity")
            identity.outputs[0].name = feature.name
            identity.outputs[0].type, identity.outputs[0].shape = found.type, found.shape
            nodes.append(identity)
            found = identity.outputs[0]
        outputs.append(found)
    chained = ir.Graph(
        inputs, outputs, nodes=nodes, initializers=initializers,
        opset_imports={"": OPSET}, name=kind,
    )  # fmt: skip
    model = ir.Model(chained, ir_version=10, producer_name="unframe-coreml")
    model.metadata_props.update(metadata)
    model.metadata_props.update(user_metadata(spec))
    return model


def _casts_back_to(value: ir.Value, source: ir.Value, stage_outputs: list[ir.Value]) -> bool:
    """Whether every reader of the stage input ``value`` is a Cast to ``source``'s type."""
    readers = [use.node for use in value.uses()]
    return (
        bool(readers)
        and source.dtype is not None
        and all(
            node.op_type == "Cast"
            and node.attributes.get_int("to") == source.dtype
            and node.outputs[0] not in stage_outputs
            for node in readers
        )
    )


def _claim_free_name(value: ir.Value, label: str, taken: set[str]) -> None:
    """Keeps ``value``'s name where no earlier stage holds it, else prefixes it with the stage."""
    name = value.name or "value"
    if name in taken:
        base = name = f"{label}/{name}"
        counter = 0
        while name in taken:
            counter += 1
            name = f"{base}__{counter}"
        value.name = name
    taken.add(name)
