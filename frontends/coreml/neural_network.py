"""Imports a NeuralNetwork ``.mlmodel`` (plain, classifier or regressor) one layer at a time.

NeuralNetwork layers read blobs with Core ML's legacy (sequence, batch, channel, height, width)
layout; the IR holds them as (batch, channel, height, width), or (batch, channel) once flat.
Image inputs become float32 tensors (1, C, H, W) of pixel values, channels in the order the
network reads them (R, G, B for RGB, B, G, R for BGR); the preprocessing scaler and mean image
are ops of the graph, and what the input means stays in the model's metadata. A classifier keeps
its class probabilities as a tensor (batch, classes) and adds its predicted label as a second
output, picked from its int64 or string class labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import FRAMEWORK, OPSET, GraphBuilder, user_metadata
from unframe.frontends.coreml.registry import NN_DOMAIN, import_registry
from unframe.shared_ir.conversion import SCHEMA_DEFAULT, ConversionLoop, ConverterContext, NodeInfo
from unframe.shared_ir.errors import BadInputError, UnsupportedError
from unframe.shared_ir.passes import infer_node_types

#: ``ImageFeatureType.ColorSpace``: GRAYSCALE, RGB, BGR, GRAYSCALE_FLOAT16.
_CHANNELS = {10: 1, 20: 3, 30: 3, 40: 1}
_COLOR_NAMES = {10: "GRAYSCALE", 20: "RGB", 30: "BGR", 40: "GRAYSCALE_FLOAT16"}
#: ``ArrayFeatureType.ArrayDataType``.
_ARRAY_TYPES = {65568: ir.DataType.FLOAT, 65600: ir.DataType.DOUBLE, 131104: ir.DataType.INT32,
                65552: ir.DataType.FLOAT16}  # fmt: skip


class LayerContext(GraphBuilder):
    """Reads the current layer: its input blobs in order and its parameter message."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.layer: Any = None
        self.params: Any = None

    def input(self, index: int) -> ir.Value:
        if index >= len(self.layer.input):
            raise self.bad(f"needs at least {index + 1} input(s), has {len(self.layer.input)}")
        blob = self.layer.input[index]
        if blob not in self.values:
            raise self.bad(f"reads blob {blob!r} before any layer or input writes it")
        return self.values[blob]

    def has_input(self, index: int) -> bool:
        return index < len(self.layer.input)

    def constant_input(self, index: int) -> np.ndarray | None:
        value = self.input(index) if self.has_input(index) else None
        if value is None or value.const_value is None:
            return None
        return np.asarray(value.const_value.numpy())

    def attr(self, name: str, default: Any = SCHEMA_DEFAULT) -> Any:
        """Field ``name`` of the layer's parameter message (protobuf supplies its default)."""
        if not hasattr(self.params, name):
            if default is SCHEMA_DEFAULT:
                raise self.error(f"has no parameter {name!r}")
            return default
        return getattr(self.params, name)

    def weights(self, params: Any, shape: Sequence[int], what: str) -> np.ndarray:
        """A ``WeightParams`` as float32 of ``shape`` (float32 or float16 storage)."""
        if params.floatValue:
            array = np.asarray(params.floatValue, dtype=np.float32)
        elif params.float16Value:
            array = np.frombuffer(params.float16Value, dtype=np.float16).astype(np.float32)
        elif params.rawValue or params.int8RawValue:
            raise self.error(f"{what} are quantized, which is not converted")
        else:
            raise self.bad(f"{what} hold no values")
        if array.size != int(np.prod(shape)):
            raise self.bad(f"{what} hold {array.size} values, the layer needs {list(shape)}")
        return array.reshape(tuple(shape))

    def rank(self, value: ir.Value) -> int:
        if value.shape is None:
            raise self.error(f"needs the rank of {value.name!r}, which is unknown")
        return len(value.shape)

    def node(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        num_outputs: int = 1,
    ) -> list[ir.Value]:
        outputs = super().node(op_type, inputs, attributes, num_outputs)
        infer_node_types(self.nodes[-1], OPSET)
        return outputs


def import_neural_network(spec: Any, where: str) -> ir.Model:
    """Converts a NeuralNetwork, NeuralNetworkClassifier or NeuralNetworkRegressor spec."""
    registry = import_registry()
    kind = spec.WhichOneof("Type")
    network = getattr(spec, kind)
    version = int(spec.specificationVersion)
    ctx = LayerContext(where)
    layers = list(network.layers)
    loop: ConversionLoop[Any] = ConversionLoop(
        framework=FRAMEWORK,
        direction="import",
        describe=lambda layer: NodeInfo(layer.name, _layer_type(layer), NN_DOMAIN, version),
        reads=lambda layer: list(layer.input),
        writes=lambda layer: list(layer.output),
        path=where,
    )
    loop.check_supported(
        layers, lambda layer: registry.lookup(_layer_type(layer), version, NN_DOMAIN) is not None
    )
    metadata = user_metadata(spec)
    exact_arrays = getattr(network, "arrayInputShapeMapping", 0) == 1
    for feature in spec.description.input:
        _add_input(feature, network, ctx, metadata, exact_arrays)

    def convert(layer: Any) -> None:
        ctx.layer, ctx.op_name, ctx.op_type = layer, layer.name, _layer_type(layer)
        ctx.params = getattr(layer, ctx.op_type)
        converter = registry.lookup(ctx.op_type, version, NN_DOMAIN)
        assert converter is not None  # the scan found one
        results = converter(layer, ctx)
        produced = [results] if isinstance(results, ir.Value) else list(results)
        if len(produced) != len(layer.output):
            raise ctx.bad(f"writes {len(layer.output)} blobs, the converter {len(produced)}")
        for blob, value in zip(layer.output, produced, strict=True):
            ctx.bind(blob, value)

    loop.convert(layers, convert)
    ctx.layer, ctx.op_name, ctx.op_type = None, "", ""
    outputs = _outputs(spec, kind, network, layers, ctx)
    graph = ir.Graph(
        ctx.inputs, outputs, nodes=ctx.nodes, initializers=list(ctx.initializers.values()),
        opset_imports={"": OPSET}, name=kind,
    )  # fmt: skip
    model = ir.Model(graph, ir_version=10, producer_name="unframe-coreml")
    model.metadata_props.update(metadata)
    return model


def _layer_type(layer: Any) -> str:
    return layer.WhichOneof("layer") or "(no layer type)"


def _add_input(
    feature: Any, network: Any, ctx: LayerContext, metadata: dict[str, str], exact: bool
) -> None:
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        image = feature.type.imageType
        channels = _CHANNELS.get(image.colorSpace)
        if channels is None:
            raise UnsupportedError(
                f"image input {feature.name!r} has color space {image.colorSpace}, not read",
                path=ctx.where, framework=FRAMEWORK,
            )  # fmt: skip
        shape = [1, channels, int(image.height), int(image.width)]
        value = ctx.add_input(feature.name, ir.DataType.FLOAT, shape)
        color = _COLOR_NAMES[image.colorSpace]
        order = {"RGB": "R, G, B", "BGR": "B, G, R"}.get(color, "one gray channel")
        metadata[f"coreml.image_input.{feature.name}"] = (
            f"{color} image {image.width}x{image.height}: a float32 tensor {shape} of pixel "
            f"values 0-255 ({order}); Core ML's preprocessing is part of the graph"
        )
        ctx.op_name, ctx.op_type = f"{feature.name}_preprocessing", "preprocessing"
        processed = _preprocess(feature.name, value, image.colorSpace, network, ctx)
        ctx.op_name, ctx.op_type = "", ""
        if processed is not value:
            ctx.values[feature.name] = processed
        return
    if kind == "multiArrayType":
        array = feature.type.multiArrayType
        dtype = _ARRAY_TYPES.get(array.dataType, ir.DataType.FLOAT)
        dims: list[int | str | None] = [int(d) for d in array.shape]
        if not dims:
            ranges = array.shapeRange.sizeRanges
            dims = [int(r.lowerBound) for r in ranges]
        if not exact:
            dims = [1, *dims]  # the legacy layout's batch, which the IR keeps
        value = ctx.add_input(feature.name, dtype, dims)
        if dtype != ir.DataType.FLOAT:
            # A NeuralNetwork's blobs are float32 whatever the array type its input declares
            # (coremltools' builders declare double by default): Core ML casts on the way in.
            ctx.op_name, ctx.op_type = f"{feature.name}_cast", "input"
            ctx.values[feature.name] = ctx.op1("Cast", [value], {"to": ir.DataType.FLOAT})
            ctx.op_name, ctx.op_type = "", ""
        return
    raise UnsupportedError(
        f"input {feature.name!r} is of feature type {kind}, which the coreml frontend does not read",
        path=ctx.where, framework=FRAMEWORK,
    )  # fmt: skip


def _preprocess(
    name: str, value: ir.Value, color: int, network: Any, ctx: LayerContext
) -> ir.Value:
    """Core ML's image preprocessing: scale * pixel + bias per channel, or minus a mean image."""
    for step in getattr(network, "preprocessing", []):
        if step.featureName not in ("", name):
            continue
        which = step.WhichOneof("preprocessor")
        if which == "scaler":
            scaler = step.scaler
            if color == 20:
                biases = [scaler.redBias, scaler.greenBias, scaler.blueBias]
            elif color == 30:
                biases = [scaler.blueBias, scaler.greenBias, scaler.redBias]
            else:
                biases = [scaler.grayBias]
            # An unset proto3 float reads 0, and a scale of 0 would blank every image: no scale.
            scale = float(scaler.channelScale) or 1.0
            scaled = ctx.op1("Mul", [value, ctx.scalar(scale)]) if scale != 1.0 else value
            bias = np.asarray(biases, np.float32).reshape(1, -1, 1, 1)
            if np.any(bias):
                scaled = ctx.op1("Add", [scaled, ctx.make_constant(bias, "bias")])
            return scaled
        if which == "meanImage":
            mean = np.asarray(step.meanImage.meanImage, np.float32)
            shape = [int(d) for d in value.shape.numpy()] if value.shape is not None else []
            if mean.size != int(np.prod(shape)):
                raise BadInputError(
                    f"the mean image of input {name!r} has {mean.size} values, the image "
                    f"{int(np.prod(shape))}",
                    path=ctx.where, framework=FRAMEWORK,
                )  # fmt: skip
            return ctx.op1("Sub", [value, ctx.make_constant(mean.reshape(shape), "mean")])
    return value


def _outputs(
    spec: Any, kind: str, network: Any, layers: list[Any], ctx: LayerContext
) -> list[ir.Value]:
    description = spec.description
    if kind != "neuralNetworkClassifier":
        return [_output_value(feature.name, ctx) for feature in description.output]
    probabilities_name = description.predictedProbabilitiesName
    blob = network.labelProbabilityLayerName or probabilities_name
    if blob not in ctx.values:
        blob = layers[-1].output[0] if layers and layers[-1].output else blob
    if blob not in ctx.values:
        raise BadInputError(
            f"the classifier's probabilities blob {blob!r} is never written",
            path=ctx.where, framework=FRAMEWORK,
        )  # fmt: skip
    ctx.op_name, ctx.op_type = "classifier", "classifier"
    scores = ctx.values[blob]
    if scores.name == probabilities_name:
        ctx.rename_away(scores)  # the name goes to the (batch, classes) output
    flat = ctx.op1("Flatten", [scores], {"axis": 1})
    which = network.WhichOneof("ClassLabels")
    if which == "stringClassLabels":
        labels = np.array(list(network.stringClassLabels.vector), dtype=object)
    elif which == "int64ClassLabels":
        labels = np.array(list(network.int64ClassLabels.vector), dtype=np.int64)
    else:
        raise BadInputError(
            "the classifier has no class labels", path=ctx.where, framework=FRAMEWORK
        )
    index = ctx.op1("ArgMax", [flat], {"axis": 1, "keepdims": 0})
    label = ctx.op1("Gather", [ctx.make_constant(labels, "class_labels"), index], {"axis": 0})
    results = []
    for feature in description.output:
        if feature.name == description.predictedFeatureName:
            ctx.bind(feature.name, label)
            results.append(label)
        elif feature.name == probabilities_name:
            ctx.bind(feature.name, flat)
            results.append(flat)
        else:
            results.append(_output_value(feature.name, ctx))
    ctx.op_name, ctx.op_type = "", ""
    return results


def _output_value(name: str, ctx: LayerContext) -> ir.Value:
    value = ctx.values.get(name)
    if value is None:
        raise BadInputError(
            f"output {name!r} is never written by a layer", path=ctx.where, framework=FRAMEWORK
        )
    if ctx.is_fixed(value) or value.name != name:
        value = ctx.identity(value, name)
    return value


if TYPE_CHECKING:

    def _speaks_the_converter_vocabulary(ctx: LayerContext) -> ConverterContext[ir.Value]:
        return ctx  # mypy checks that LayerContext implements the Protocol
