"""onnx's backend node tests through the Caffe2 backend and the executor (expected outputs).

Only the test modules of the ops below are imported (all of onnx's node tests take long to build);
``unframe conformance --backend caffe2`` runs every one.
"""

from __future__ import annotations

import importlib
import re

import pytest

from unframe.converters import conformance
from unframe.converters.adapters.caffe2 import Caffe2Framework

#: onnx test modules (onnx.backend.test.case.node.*) -> the op whose every test must pass.
MODULES = {
    "conv": "Conv", "convtranspose": "ConvTranspose", "softmax": "Softmax",
    "logsoftmax": "LogSoftmax", "hardmax": "Hardmax", "gemm": "Gemm", "slice": "Slice",
    "gatherelements": "GatherElements", "gathernd": "GatherND", "cumsum": "CumSum",
    "trilu": "Trilu", "depthtospace": "DepthToSpace", "spacetodepth": "SpaceToDepth",
    "unsqueeze": "Unsqueeze", "split": "Split", "clip": "Clip",
    "reduce_log_sum_exp": "ReduceLogSumExp", "batch_normalization": "BatchNormalization",
    "layernormalization": "LayerNormalization", "hardswish": "HardSwish", "round": "Round",
    "compress": "Compress", "celu": "Celu", "topk": "TopK", "argmax": "ArgMax",
    "onehot": "OneHot", "reversesequence": "ReverseSequence", "maxunpool": "MaxUnpool",
    "rotaryembedding": "RotaryEmbedding", "scatterelements": "ScatterElements",
    "center_crop_pad": "CenterCropPad", "pad": "Pad", "cumprod": "CumProd",
    "negativeloglikelihoodloss": "NegativeLogLikelihoodLoss", "adam": "Adam",
    "dynamicquantizelinear": "DynamicQuantizeLinear", "rmsnormalization": "RMSNormalization",
    "averagepool": "AveragePool", "lppool": "LpPool", "resize": "Resize",
    # Parameters fed as graph inputs (axes, window sizes), computed with in the net:
    "reducesum": "ReduceSum", "reducemean": "ReduceMean", "reducemax": "ReduceMax",
    "reducemin": "ReduceMin", "reducel1": "ReduceL1", "reducel2": "ReduceL2",
    "reduce_log_sum": "ReduceLogSum", "reducesumsquare": "ReduceSumSquare",
    "reduceprod": "ReduceProd", "hannwindow": "HannWindow", "hammingwindow": "HammingWindow",
    "blackmanwindow": "BlackmanWindow", "maxpool": "MaxPool", "nonzero": "NonZero",
    "det": "Det", "matmulinteger": "MatMulInteger", "convinteger": "ConvInteger",
    "tile": "Tile", "squeeze": "Squeeze", "melweightmatrix": "MelWeightMatrix", "rnn": "RNN",
    "gru": "GRU", "lstm": "LSTM", "col2im": "Col2Im", "qlinearconv": "QLinearConv",
    "stft": "STFT", "tensorscatter": "TensorScatter",
}  # fmt: skip

#: Tests of the ops above that fail, each with the reason.
KNOWN_FAILURES = {
    "test_resize_tf_crop_and_resize": "a region of interest and extrapolation value: not exported",
    "test_resize_tf_crop_and_resize_axes_2_3": "tf_crop_and_resize is not exported",
    "test_resize_tf_crop_and_resize_axes_3_2": "tf_crop_and_resize is not exported",
    "test_resize_tf_crop_and_resize_extrapolation_value": "tf_crop_and_resize is not exported",
    # Caffe2 registers Div, Mul, Add... for int32, int64, float and double only, and its Cast
    # refuses float16 on CPU (cast_op.cc): float16 arithmetic has no Caffe2 form.
    "test_celu_float16_expanded": "float16 arithmetic: Caffe2 has no CPU kernel for it",
    # Caffe2's Scale takes float and double (scale_op.h), Elu float only (elu_op.cc).
    "test_celu_float16": "float16 Scale and Elu: Caffe2 has no CPU kernel for them",
    # TopKOp<float, CPUContext> (top_k.cc); float cannot hold every int64, so no exact form.
    "test_top_k_same_values": "int64 TopK: Caffe2 registers TopK for float only",
    "test_top_k_same_values_2d": "int64 TopK: Caffe2 registers TopK for float only",
    "test_top_k_same_values_largest": "int64 TopK: Caffe2 registers TopK for float only",
}

#: Element types Caffe2's TensorProto has no number for: such tests cannot pass on any backend.
_FOREIGN_TYPES = re.compile(r"bfloat16|uint32|uint64|string|float8|int4|float4")


def _cases() -> list[object]:
    import onnx.backend.test.case.node as node_cases

    for module in MODULES:
        importlib.import_module(f"{node_cases.__name__}.{module}")
    wanted = set(MODULES.values())
    return sorted(
        (
            case
            for case in node_cases._NodeTestCases
            if conformance.node_test_op(case) in wanted and not _FOREIGN_TYPES.search(case.name)
        ),
        key=lambda case: case.name,
    )


_CASES = _cases()


def test_every_op_has_cases() -> None:
    found = {conformance.node_test_op(case) for case in _CASES}
    assert found == set(MODULES.values())
    assert set(KNOWN_FAILURES) <= {case.name for case in _CASES}  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])  # type: ignore[attr-defined]
def test_node(case: object) -> None:
    name: str = case.name  # type: ignore[attr-defined]
    reason = KNOWN_FAILURES.get(name)
    outcome = conformance.run_test(Caffe2Framework(), case)
    if reason:  # still run, so a known failure that now passes fails until its line goes
        assert outcome.status != "pass", f"{name} now passes: remove it from KNOWN_FAILURES"
        pytest.xfail(f"{reason} ({outcome.reason})")
    assert outcome.status == "pass", outcome.reason
