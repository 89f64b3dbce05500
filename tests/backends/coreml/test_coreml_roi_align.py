"""Core ML backend: RoiAlign and DeformConv exported to .mlpackage, re-imported and run on
onnxruntime, against onnx's reference implementation (regions and taps past the edges, both
coordinate modes, avg and max, groups, offset groups, masks)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError

pytest.importorskip("coremltools", reason="the coreml extra is not installed")

_ROIS = np.array(
    [[0.5, 1.0, 6.0, 7.5], [-2.0, -1.5, 3.0, 2.0], [4.0, 5.0, 11.0, 9.5], [2.0, 2.0, 2.2, 2.1]],
    np.float32,
)


def _model(**attributes: object) -> ir.Model:
    graph = helper.make_graph(
        [helper.make_node("RoiAlign", ["x", "rois", "batch"], ["y"], **attributes)],
        "roi_align",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 9, 10]),
            helper.make_tensor_value_info("rois", TensorProto.FLOAT, [4, 4]),
            helper.make_tensor_value_info("batch", TensorProto.INT64, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]))


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("transform", ["half_pixel", "output_half_pixel"])
def test_roi_align_matches_onnx_reference(mode: str, transform: str) -> None:
    model = _model(
        mode=mode,
        coordinate_transformation_mode=transform,
        output_height=3,
        output_width=4,
        sampling_ratio=2,
        spatial_scale=0.9,
    )
    feeds = {
        "x": np.random.default_rng(8).standard_normal((2, 3, 9, 10)).astype(np.float32),
        "rois": _ROIS,
        "batch": np.array([1, 0, 1, 0], np.int64),
    }
    (want,) = ReferenceEvaluator(ir.to_proto(model)).run(None, feeds)
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_roi_align_with_adaptive_sampling_is_refused_by_name() -> None:
    model = _model(output_height=2, output_width=2, sampling_ratio=0)
    with pytest.raises(UnsupportedOpsError) as caught:
        CoreMLFramework().run_ir(
            model,
            {
                "x": np.zeros((2, 3, 9, 10), np.float32),
                "rois": _ROIS,
                "batch": np.zeros(4, np.int64),
            },
        )
    assert "sampling_ratio=0" in caught.value.ops[0].reason


@pytest.mark.parametrize(
    ("attributes", "with_mask"),
    [
        ({"kernel_shape": [2, 3], "pads": [1, 0, 0, 1], "strides": [2, 1]}, True),
        ({"kernel_shape": [2, 2], "group": 2, "offset_group": 2, "dilations": [2, 1]}, False),
    ],
)
def test_deform_conv_matches_onnx_reference(attributes: dict[str, object], with_mask: bool) -> None:
    """Offsets large enough to move taps past the image's edges (those corners read 0)."""
    rng = np.random.default_rng(11)
    kh, kw = attributes["kernel_shape"]  # type: ignore[misc]
    groups, offset_groups = attributes.get("group", 1), attributes.get("offset_group", 1)
    x = rng.standard_normal((1, 4, 4, 5)).astype(np.float32)
    w = rng.standard_normal((4, 4 // groups, kh, kw)).astype(np.float32)  # type: ignore[operator]
    pads = attributes.get("pads", [0, 0, 0, 0])
    strides = attributes.get("strides", [1, 1])
    dilations = attributes.get("dilations", [1, 1])
    oh = (4 + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1  # type: ignore[index]
    ow = (5 + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1  # type: ignore[index]
    taps = offset_groups * kh * kw  # type: ignore[operator]
    feeds = {
        "x": x,
        "w": w,
        "offset": (rng.standard_normal((1, 2 * taps, oh, ow)) * 1.5).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
    }
    names = ["x", "w", "offset", "b"]
    if with_mask:
        names.append("mask")
        feeds["mask"] = rng.random((1, taps, oh, ow)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("DeformConv", names, ["y"], **attributes)],
        "deform_conv",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
    (want,) = ReferenceEvaluator(ir.to_proto(model)).run(None, feeds)
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
