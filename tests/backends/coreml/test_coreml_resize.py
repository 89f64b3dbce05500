"""Core ML backend, Resize: every coordinate transformation, rounding, cubic coefficient, antialias
and crop, with scales, sizes and regions given at run time, exported, re-imported and run on
onnxruntime against onnx's own node-test data and against onnxruntime on the source model."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from unframe.backends.coreml.driver import export_mlprogram
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.converters.conformance import _as_value, collect_node_tests
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


@pytest.mark.parametrize(
    "name",
    [
        "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",  # cubic a, exclusion
        "test_resize_downsample_scales_linear_antialias",  # a stretched kernel, scale at run time
        "test_resize_tf_crop_and_resize_extrapolation_value",  # roi at run time, extrapolation
        "test_resize_upsample_sizes_nearest_axes_3_2",
    ],
)
def test_resize_matches_onnx_node_test_data(name: str) -> None:
    (case,) = collect_node_tests(name_pattern=f"^{name}$")
    model = ir.from_proto(case.model)
    (inputs, expected), *_ = case.data_sets
    feeds = {v.name: _as_value(a) for v, a in zip(case.model.graph.input, inputs, strict=True)}
    actual = list(CoreMLFramework().run_ir(model, feeds).values())
    np.testing.assert_allclose(actual[0], _as_value(expected[0]), rtol=1e-4, atol=1e-5)


def _resize_model(
    shape: list[int], out_shape: list[int], frozen_scales: list[float] | None, **attrs: object
) -> ir.Model:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    initializers = []
    if frozen_scales is None:
        inputs.append(helper.make_tensor_value_info("scales", TensorProto.FLOAT, [len(shape)]))
    else:
        initializers.append(
            helper.make_tensor("scales", TensorProto.FLOAT, [len(shape)], frozen_scales)
        )
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)],
        "resize",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializers,
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))


@pytest.mark.parametrize(
    ("attrs", "scales", "out_shape"),
    [
        ({"mode": "cubic", "antialias": 1}, [1.0, 1.0, 0.45, 0.75], [2, 3, 4, 7]),
        (
            {"mode": "linear", "antialias": 1, "coordinate_transformation_mode": "align_corners"},
            [1.0, 1.0, 0.3, 1.6],
            [2, 3, 2, 16],
        ),
        (
            {
                "mode": "nearest",
                "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "ceil",
            },
            [1.0, 1.0, 1.7, 0.55],
            [2, 3, 15, 5],
        ),
        (
            {"mode": "cubic", "coordinate_transformation_mode": "pytorch_half_pixel"},
            [1.0, 1.0, 2.5, 0.15],
            [2, 3, 22, 1],
        ),
    ],
)
def test_resize_by_scales_at_run_time_matches_the_onnx_reference(
    attrs: dict[str, object], scales: list[float], out_shape: list[int]
) -> None:
    model = _resize_model([2, 3, 9, 10], out_shape, None, **attrs)
    rng = np.random.default_rng(0)
    feeds = {
        "x": rng.standard_normal((2, 3, 9, 10)).astype(np.float32),
        "scales": np.array(scales, np.float32),
    }
    # onnx's reference, not onnxruntime: onnxruntime's antialias with align_corners differs from it
    (expected,) = ReferenceEvaluator(ir.to_proto(model)).run(None, feeds)
    actual = CoreMLFramework().run_ir(model, feeds)["y"]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_constant_scales_mil_resizes_cannot_sample_become_gathers() -> None:
    """Cubic, and nearest at a scale whose rounding differs from MIL's floor(i / scale)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 7)).astype(np.float32)
    for attrs, scales, out_shape in [
        ({"mode": "cubic"}, [1.0, 1.0, 1.5, 0.5], [1, 2, 9, 3]),
        ({"mode": "nearest"}, [1.0, 1.0, 0.7, 1.3], [1, 2, 4, 9]),
    ]:
        model = _resize_model([1, 2, 6, 7], out_shape, scales, **attrs)
        expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), {"x": x})["y"]
        mil = export_mlprogram(_resize_model([1, 2, 6, 7], out_shape, scales, **attrs))
        op_types = {op.op_type for op in mil.mlmodel._mil_program.functions["main"].operations}
        assert "gather" in op_types
        actual = CoreMLFramework().run_ir(model, {"x": x})["y"]
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_resize_at_run_time_without_a_declared_output_shape_is_refused() -> None:
    model = _resize_model([1, 1, 4, 4], [1, 1, 4, 4], None, mode="linear")
    model.graph.outputs[0].shape = ir.Shape(["a", "b", "c", "d"])
    with pytest.raises(UnsupportedOpsError) as raised:
        export_mlprogram(model)
    assert "output shape not declared" in str(raised.value.ops[0].reason)


def test_resize_of_a_batch_unknown_when_built_matches_onnxruntime() -> None:
    """Constant scales, then sizes at run time that the declared output shape fixes (as torch
    exports F.interpolate(size=...)); the batch left free, run at two batch sizes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 5, 6])
    sizes = helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])
    graph = helper.make_graph(
        [
            helper.make_node(
                "Resize", ["x", "", "scales"], ["up"], mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel",
            ),
            helper.make_node("Resize", ["up", "", "", "sizes"], ["y"], mode="nearest"),
        ],
        "resize",
        [x, sizes],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 7, 9])],
        [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])],
        # The batch named through, as torch's exporter names it
        value_info=[helper.make_tensor_value_info("up", TensorProto.FLOAT, ["n", 2, 10, 12])],
    )  # fmt: skip
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
    rng = np.random.default_rng(2)
    for batch in (1, 3):
        feeds = {
            "x": rng.standard_normal((batch, 2, 5, 6)).astype(np.float32),
            "sizes": np.array([batch, 2, 7, 9], np.int64),
        }
        expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)["y"]
        actual = CoreMLFramework().run_ir(model, feeds)["y"]
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
