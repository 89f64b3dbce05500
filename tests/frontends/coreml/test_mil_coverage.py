"""The frontend checked independently of the backend (issue 12, "Checking numbers without a Mac").

Validation off macOS re-imports what the backend wrote through this frontend, which is only
trustworthy if the frontend reads each MIL op the backend emits correctly on packages a third
party wrote. Here coremltools' own PyTorch converter (``ct.convert`` on a traced module, torch
2.13 works though coremltools 9 names 2.7 as the last tested) writes packages from tiny PyTorch
models; each imports and matches torch's own outputs (rtol 1e-4, atol 1e-5). Then every MIL op
type the backend emits over a sample of onnx's node tests for the neural-network converters must
appear in one of those packages, or be a recorded gap (a gap that closes fails too: the record
cannot go stale).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest

from tests.frontends.coreml.coreml_packages import (
    assert_package_matches,
    package_op_types,
    program_op_types,
    write_mlprogram,
    write_traced,
)
from unframe.backends.coreml.native import coremltools, quiet_stderr
from unframe.converters.conformance import _as_value, collect_node_tests
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.runner import run_onnxruntime

torch = pytest.importorskip("torch", reason="the packages are converted from PyTorch models")
F = torch.nn.functional


class Images(torch.nn.Module):
    """Convolutions, pooling, normalizations, resizing, padding and the image activations."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.dilated = torch.nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3)
        self.up = torch.nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.instance = torch.nn.InstanceNorm2d(4, affine=True)
        self.group = torch.nn.GroupNorm(2, 4)
        self.lrn = torch.nn.LocalResponseNorm(3)

    def forward(self, x: Any) -> Any:
        # The grid straight from the input: sampling amplifies upstream rounding at reflections.
        grid = torch.tanh(x[:, :2] * 2).permute(0, 2, 3, 1)
        x = x + F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
        y = F.leaky_relu(self.dilated(F.elu(self.conv(x))), 0.1)
        y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 3, 2, 1, count_include_pad=False)
        y = self.lrn(self.group(self.instance(self.up(y))))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        # 16 -> 20: coremltools writes scale 1.2500062, MIL samples by the sizes.
        y = F.interpolate(y, size=(20, 20), mode="bilinear", align_corners=False) + F.interpolate(
            y, size=(20, 20), mode="bilinear", align_corners=True
        )
        y = F.pad(y, (1, 2, 0, 1))
        return torch.cat(
            [F.hardsigmoid(y), F.hardswish(y), F.softplus(y), F.silu(y), F.mish(y), F.softsign(y)],
            1,
        )


class Sequence(torch.nn.Module):
    """Attention-shaped matmuls, softmax, layer norm, GELU and reductions."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 8)

    def forward(self, x: Any) -> Any:
        h = self.linear(x) + x.abs().pow(1.5)
        attended = torch.softmax(h @ h.transpose(1, 2), -1) @ h
        y = F.layer_norm(attended, (8,)) + torch.log_softmax(h, -1) + F.gelu(h) + torch.tanh(h)
        y = y.sum(-1, keepdim=True) * y.mean(1, keepdim=True) + torch.sigmoid(h)
        return torch.relu(F.hardtanh(y)) + torch.clamp(y, -0.5, 0.5)


class Indexing(torch.nn.Module):
    """Selection, comparisons, arg-max, one-hot, flips, tiling and batch norm after a ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(4)
        with torch.no_grad():
            self.norm.running_mean.uniform_(-1, 1)
            self.norm.running_var.uniform_(0.5, 2)

    def forward(self, x: Any) -> Any:
        y = self.norm(torch.relu(x))  # after the ReLU: not fused away
        y = torch.where(x > 0.1, y, x * 0.5) + (x < -0.3).float()
        hard = (y == y.amax(-1, keepdim=True)).float()
        z = torch.exp(-y.abs()) + torch.rsqrt(y * y + 1) + torch.flip(y, [-1]) + hard
        z = z.permute(0, 2, 1).unsqueeze(1).repeat(1, 2, 1, 1)
        hot = F.one_hot(torch.argmax(x, 1), 6).unsqueeze(1).transpose(2, 3)[:, :, :3, :4]
        return z[:, :, 1:4, :] * hot.float()


class Quantized(torch.nn.Module):
    """Quantization spelled out: range, scale, round, saturate, int casts, per-block gather."""

    def forward(self, x: Any) -> Any:
        low = torch.minimum(x.min(), torch.tensor(0.0))
        scale = (torch.maximum(x.max(), torch.tensor(0.0)) - low) / 255
        q = torch.clamp(torch.round(x / scale) + 3, 0, 255).to(torch.int32)
        blocks = torch.index_select(q, 2, torch.tensor([0, 0, 1, 1, 2]))
        return (blocks - 3).float() * scale


class Scattering(torch.nn.Module):
    """Gathers and scatters along an axis, floor division, floor, logic and powers of two."""

    def forward(self, x: Any) -> Any:
        index = torch.topk(x, 3, -1).indices
        spread = torch.zeros_like(x).scatter_add(-1, index, torch.gather(x, -1, index) * 2)
        steps = torch.remainder(x * 3, 1.5) + torch.floor_divide(x * 4, 1.5)
        odd = torch.logical_or(
            torch.logical_xor(x > 0, x.abs() >= 0.5), torch.logical_not(x != x.flip(-1))
        )
        both = torch.logical_and(odd, x < 1)
        rounded = torch.floor(x * 2) + (x <= 0.2).float()
        return spread.sum(-1, keepdim=True) + steps + both.float() + torch.exp2(x) + rounded


class Counting(torch.nn.Module):
    """Sizes read at run time (a flexible first dim): shape, range_1d, fill of joined scalars."""

    def forward(self, x: Any) -> Any:
        rows = torch.arange(x.shape[0], dtype=torch.float32).unsqueeze(1)
        return torch.remainder(x * 5, 1.5) + rows + torch.full((x.shape[0], 4), 2.0)


class Recurrent(torch.nn.Module):
    """A forward LSTM, then a bidirectional one with its final states."""

    def __init__(self) -> None:
        super().__init__()
        self.forward_lstm = torch.nn.LSTM(4, 5)
        self.both = torch.nn.LSTM(5, 3, bidirectional=True)

    def forward(self, x: Any) -> Any:
        y, _ = self.forward_lstm(x)
        z, (h, c) = self.both(y)
        return z.sum(-1, keepdim=True) + h.sum() + c.mean()


class Branching(torch.nn.Module):
    """Data-dependent control flow (scripted, not traced): coremltools writes a cond."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # TorchScript reads the annotations
        if x.sum() > 0:
            y = torch.relu(x) * 2
        else:
            y = -x + 1
        return y


MODELS = {
    "images": (Images, (1, 3, 8, 8)),
    "sequence": (Sequence, (1, 5, 8)),
    "indexing": (Indexing, (2, 4, 6)),
    "recurrent": (Recurrent, (6, 2, 4)),
    "quantized": (Quantized, (1, 3, 5)),
    "scattering": (Scattering, (2, 3, 6)),
}

#: onnx node tests whose export samples the MIL ops the neural-network converters emit; those
#: marked frozen run with their inputs after the first as constants (as exported models hold
#: Resize scales and ConvTranspose weights).
NODE_TESTS = [
    ("test_conv_with_strides_and_asymmetric_padding", False),
    ("test_convtranspose_dilations", False),  # a weight at run time: conv on spread input
    ("test_convtranspose_output_shape", True),
    ("test_maxpool_2d_pads", False),
    ("test_averagepool_2d_pads", False),
    ("test_lppool_2d_default", False),
    ("test_maxpool_2d_dilations", False),  # dilated: strided slices of the padded input
    ("test_averagepool_2d_dilations", False),
    ("test_maxpool_with_argmax_2d_precomputed_pads", False),  # Indices: greater and select
    ("test_batchnorm_example_training_mode", False),  # the batch's statistics
    ("test_maxpool_2d_uint8", False),  # integers pooled in float32 and cast back
    ("test_globalaveragepool", False),
    ("test_globalmaxpool", False),
    ("test_batchnorm_example", True),
    ("test_instancenorm_example", True),
    ("test_layer_normalization_3d_axis1_epsilon", True),
    ("test_group_normalization_example", False),
    ("test_lrn", False),
    ("test_gemm_transposeB", True),
    ("test_matmul_1d_1d", False),
    ("test_softmax_axis_1", False),
    ("test_logsoftmax_axis_1", False),
    ("test_hardmax_axis_1", False),
    ("test_celu", False),
    ("test_shrink_soft", False),
    ("test_mish", False),
    ("test_dropout_default_mask", False),
    ("test_resize_upsample_scales_nearest", True),
    ("test_resize_upsample_scales_linear", True),
    ("test_gridsample_reflection_padding", False),
    ("test_if", False),
    ("test_lstm_bidirectional", True),
    ("test_quantizelinear_blocked_asymmetric", False),
    ("test_dequantizelinear_axis", False),
    ("test_dynamicquantizelinear", False),
    ("test_qlinearmatmul_3D_uint8_float16", False),
    ("test_qlinearconv", False),
    ("test_cumprod_2d_axis_0", False),  # the axis at run time: every axis, then select
    ("test_slice_neg_steps", False),  # bounds at run time: masked sums, then gathers
    ("test_center_crop_pad_crop_and_pad", False),  # lengths counted at run time: range_1d
    ("test_wrap_pad", False),  # pads at run time: gathers
    ("test_reduce_log_sum_empty_set_expanded", False),  # an identity element filled
    ("test_reduce_l2_do_not_keepdims_example_expanded", False),  # a shape found at run time
    ("test_tensorscatter_circular", False),
    ("test_col2im_pads", False),  # a scatter-add
    ("test_maxunpool_export_with_output_shape", False),
    ("test_bitshift_right_uint8", False),
    ("test_mod_float_edge_cases_fmod_0_float32", False),
    ("test_einsum_batch_diagonal", False),
    ("test_depthtospace_example_expanded", False),  # narrowed from rank 6
    ("test_dft_rfft", False),
    ("test_det_nd", False),
    ("test_adam", False),
    ("test_ai_onnx_ml_binarizer", False),
    ("test_roialign_mode_max", False),  # bilinear taps gathered by rows, then columns
    ("test_stft", False),
    ("test_dft_inverse", False),  # the axis at run time: select
    ("test_tfidfvectorizer_tf_uniandbigrams_skip5", False),
    ("test_deform_conv_with_mask_bias", False),
    ("test_affine_grid_3d", False),
]

#: MIL ops the backend emits that no package coremltools writes from these models holds, and
#: why; their readers are checked only against onnxruntime (tests/backends/coreml).
KNOWN_GAPS = {
    "local_response_norm": "coremltools decomposes torch's LocalResponseNorm (avg_pool of squares)",
    "resize_bilinear": "coremltools writes upsample_bilinear for F.interpolate at fixed sizes",
    "identity": "coremltools ends no program on an identity (Dropout's input as its output)",
    "mod": "coremltools writes torch's remainder as floor_div, mul and sub, and has no fmod",
}


@pytest.fixture(scope="module")
def ct_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any, Any]]:
    """Each model converted once by ``ct.convert`` (float32), with torch's outputs (the oracle)."""
    made = {}
    for name, (factory, shape) in MODELS.items():
        torch.manual_seed(0)
        module = factory().eval()
        example = torch.randn(*shape)
        path = tmp_path_factory.mktemp(name) / f"{name}.mlpackage"
        made[name] = write_traced(module, example, path)
    return made


@pytest.fixture(scope="module")
def cond_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ct = coremltools()
    return write_mlprogram(
        torch.jit.script(Branching()),
        tmp_path_factory.mktemp("cond") / "cond.mlpackage",
        [ct.TensorType(name="x", shape=(2, 3))],
    )


@pytest.fixture(scope="module")
def flexible_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ct = coremltools()
    with quiet_stderr():  # tracing's warnings, as ct.convert's
        traced = torch.jit.trace(Counting(), torch.randn(3, 4))
    return write_mlprogram(
        traced,
        tmp_path_factory.mktemp("flexible") / "flexible.mlpackage",
        [ct.TensorType(name="x", shape=(ct.RangeDim(1, 8), 4))],
    )


def test_coremltools_flexible_package_matches_torch_at_two_sizes(flexible_package: Path) -> None:
    assert {"shape", "range_1d", "fill"} <= package_op_types(flexible_package, nested=False)
    model = load_coreml(flexible_package)
    for rows in (2, 5):
        x = torch.randn(rows, 4)
        (actual,) = run_onnxruntime(model, {"x": x.numpy()}).values()
        np.testing.assert_allclose(actual, Counting()(x).numpy(), rtol=1e-4, atol=1e-5)


def test_coremltools_cond_matches_torch_on_both_branches(cond_package: Path) -> None:
    assert "cond" in package_op_types(cond_package, nested=False)
    model = load_coreml(cond_package)
    example = torch.randn(2, 3)
    for x in (example.abs() + 0.1, -example.abs() - 0.1):
        (actual,) = run_onnxruntime(model, {"x": x.numpy()}).values()
        np.testing.assert_allclose(actual, Branching()(x).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_coremltools_package_matches_torch(name: str, ct_packages: dict[str, Any]) -> None:
    path, example, expected = ct_packages[name]
    assert_package_matches(path, {"x": example}, expected)


def _node_model(name: str, frozen: bool) -> ir.Model:
    (case,) = collect_node_tests(name_pattern=f"^{name}$")
    model = ir.from_proto(case.model)
    if frozen:
        graph = model.graph
        for index, raw in enumerate(case.data_sets[0][0][1:], start=1):
            value = graph.inputs[index]
            value.const_value = ir.tensor(np.asarray(_as_value(raw)), name=value.name)
            graph.register_initializer(value)
        del graph.inputs[1:]
    return model


def test_every_mil_op_the_backend_emits_is_read_on_a_coremltools_package(
    ct_packages: dict[str, Any], cond_package: Path, flexible_package: Path
) -> None:
    from unframe.backends.coreml.driver import export_mlprogram

    emitted: dict[str, str] = {}
    for name, frozen in NODE_TESTS:
        exported = export_mlprogram(_node_model(name, frozen))
        for op_type in program_op_types(exported.mlmodel._mil_program, nested=False):
            emitted.setdefault(op_type, name)
    paths = [path for path, _, _ in ct_packages.values()] + [cond_package, flexible_package]
    covered = set().union(*(package_op_types(path, nested=False) for path in paths))
    gaps = {op: where for op, where in emitted.items() if op not in covered | {"const"}}
    assert sorted(gaps) == sorted(KNOWN_GAPS), (
        f"emitted but in no coremltools package (first node test): {gaps}"
    )
