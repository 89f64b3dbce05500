"""Element types TFLite has no type for (float8, E8M0, float4, int4/uint4/int2/uint2), carried as
uint8 bits or int8/uint8 values, with the arithmetic run on LiteRT.

Oracles: onnx's reference evaluator (its Cast is ``saturate_cast``/ml_dtypes/``to_float8e8m0``)
and ml_dtypes' own conversions. Each model is converted once and run on LiteRT.
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from unframe.backends.tflite import run_export, to_tflite  # noqa: E402
from unframe.backends.tflite.float_codes import FLOAT_FORMATS, decoding_table  # noqa: E402
from unframe.backends.tflite.native import read_tflite  # noqa: E402
from unframe.cli.main import cli  # noqa: E402
from unframe.converters import api  # noqa: E402
from unframe.converters.adapters.tflite import TFLiteFramework  # noqa: E402
from unframe.shared_ir.errors import ExitCode, UnsupportedError  # noqa: E402

#: (output name, target type, saturate, round_mode) of the float32 -> narrow float casts.
_ENCODINGS = [
    *(
        (f"{t.name.lower()}_{'sat' if s else 'nosat'}", t, s, "up")
        for t in (
            ir.DataType.FLOAT8E4M3FN,
            ir.DataType.FLOAT8E4M3FNUZ,
            ir.DataType.FLOAT8E5M2,
            ir.DataType.FLOAT8E5M2FNUZ,
        )
        for s in (True, False)
    ),
    ("float4e2m1", ir.DataType.FLOAT4E2M1, True, "up"),
    *(
        (f"e8m0_{mode}_{'sat' if s else 'nosat'}", ir.DataType.FLOAT8E8M0, s, mode)
        for mode in ("up", "down", "nearest")
        for s in (True, False)
    ),
]


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto] | None = None,
    opset: int = 25,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers or [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _hard_values() -> np.ndarray:
    """Every value of every narrow format, the midpoints between neighbours, each one ulp
    either side, their negatives, zeros, infinities, NaN, and random float32 bit patterns."""
    values = [np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4e38, 1e-45, 2.0**-127])]
    for dtype in FLOAT_FORMATS:
        grid = np.unique(decoding_table(dtype)[~np.isnan(decoding_table(dtype))])
        middles = ((grid[:-1].astype(np.float64) + grid[1:]) / 2).astype(np.float32)
        values += [grid, middles, np.float32([grid[-1] * 1.0625, grid[-1] * 1.125])]
    base = np.concatenate(values)
    near = np.concatenate(
        [base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(-np.inf))]
    )
    rng = np.random.default_rng(11)
    random_bits = rng.integers(0, 2**32, 4000, dtype=np.uint64).astype(np.uint32)
    random_values = random_bits.view(np.float32)
    random_values = random_values[~np.isnan(random_values)]
    finite = near[np.isfinite(near)]
    return np.unique(np.concatenate([near, -finite, random_values]).astype(np.float32))


def test_float32_to_every_narrow_float_format_is_bit_exact_on_litert() -> None:
    """Nearest-even, saturate and E8M0's round modes: LiteRT's bits are onnx's reference's."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    nodes, outputs = [], []
    for name, dtype, saturate, mode in _ENCODINGS:
        attrs: dict[str, object] = {"to": int(dtype), "saturate": int(saturate)}
        if dtype == ir.DataType.FLOAT8E8M0:
            attrs["round_mode"] = mode
        nodes.append(helper.make_node("Cast", ["x"], [name], name=f"cast_{name}", **attrs))
        outputs.append(helper.make_tensor_value_info(name, int(dtype), [None]))
    proto = _model(nodes, [x], outputs)
    values = _hard_values()
    expected = dict(
        zip(
            [o.name for o in outputs],
            ReferenceEvaluator(proto).run(None, {"x": values}),
            strict=True,
        )
    )
    got = run_export(to_tflite(ir.from_proto(proto)), {"x": values})
    for name, dtype, _, _ in _ENCODINGS:
        assert got[name].dtype == FLOAT_FORMATS[dtype], name
        got_bits, want_bits = got[name].view(np.uint8), expected[name].view(np.uint8)
        wrong = np.flatnonzero(got_bits != want_bits)
        assert not wrong.size, (name, values[wrong][:5], got_bits[wrong][:5], want_bits[wrong][:5])


def test_every_narrow_float_pattern_decodes_exactly_on_litert() -> None:
    """Every bit pattern of each format, fed as that format, cast to float32 and float16."""
    nodes, inputs, outputs = [], [], []
    feeds = {}
    for dtype, ml_type in FLOAT_FORMATS.items():
        name = dtype.name.lower()
        inputs.append(helper.make_tensor_value_info(name, int(dtype), [None]))
        for target in (TensorProto.FLOAT, TensorProto.FLOAT16):
            out = f"{name}_as_{TensorProto.DataType.Name(target).lower()}"
            nodes.append(helper.make_node("Cast", [name], [out], to=target))
            outputs.append(helper.make_tensor_value_info(out, target, [None]))
        count = 16 if dtype == ir.DataType.FLOAT4E2M1 else 256
        feeds[name] = np.arange(count, dtype=np.uint8).view(ml_type)
    got = run_export(to_tflite(ir.from_proto(_model(nodes, inputs, outputs))), feeds)
    for name, patterns in feeds.items():
        for target in (np.float32, np.float16):
            out = f"{name}_as_{'float' if target is np.float32 else 'float16'}"
            with np.errstate(over="ignore"):
                want = patterns.astype(np.float32).astype(target)
            assert got[out].dtype == target
            np.testing.assert_array_equal(got[out], want, err_msg=out)


@pytest.mark.parametrize(
    "dtype", [ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2]
)
def test_small_integers_truncate_wrap_and_read_back_as_ml_dtypes(dtype: type) -> None:
    """float32 -> int4/uint4/int2/uint2 truncates and keeps the low bits (ml_dtypes' cast, onnx's
    reference); an int32 input wraps the same way; the small type casts back to float and int8."""
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    f = helper.make_tensor_value_info("f", TensorProto.FLOAT, [None])
    i = helper.make_tensor_value_info("i", TensorProto.INT32, [None])
    nodes = [
        helper.make_node("Cast", ["f"], ["from_float"], to=onnx_type),
        helper.make_node("Cast", ["i"], ["from_int"], to=onnx_type),
        helper.make_node("Cast", ["from_float"], ["back"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["from_int"], ["as_int8"], to=TensorProto.INT8),
    ]
    outputs = [
        helper.make_tensor_value_info("from_float", onnx_type, [None]),
        helper.make_tensor_value_info("from_int", onnx_type, [None]),
        helper.make_tensor_value_info("back", TensorProto.FLOAT, [None]),
        helper.make_tensor_value_info("as_int8", TensorProto.INT8, [None]),
    ]
    floats = np.float32([0, 0.9, -0.9, 1.5, -1.5, 2.5, -2.5, 3.7, -3.7, 7.9, -8.2, 15.5, 16, 40])
    ints = np.int32([0, 1, -1, 2, -2, 3, -3, 7, 8, -8, -9, 15, 16, 17, 255, -1000])
    got = run_export(
        to_tflite(ir.from_proto(_model(nodes, [f, i], outputs))), {"f": floats, "i": ints}
    )
    assert got["from_float"].dtype == dtype
    np.testing.assert_array_equal(got["from_float"], floats.astype(dtype))
    np.testing.assert_array_equal(got["from_int"], ints.astype(dtype))
    np.testing.assert_array_equal(got["back"], floats.astype(dtype).astype(np.float32))
    np.testing.assert_array_equal(got["as_int8"], ints.astype(dtype).astype(np.int8))


def test_quantize_per_axis_to_float8_and_an_int4_input_dequantized_match_the_reference() -> None:
    """QuantizeLinear per axis to E4M3FN (saturating), and an int4 input dequantized per channel
    with an int4 zero-point initializer (carried as int8): the arithmetic is LiteRT's."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    w = helper.make_tensor_value_info("w", TensorProto.INT4, [4, 5])
    zero = np.array([1, -2, 0, 7, -8], dtype=ml_dtypes.int4)
    initializers = [
        helper.make_tensor("scale", TensorProto.FLOAT, [3], [0.5, 2.0, 0.01]),
        onnx.numpy_helper.from_array(zero, "w_zero"),
        helper.make_tensor("w_scale", TensorProto.FLOAT, [5], [0.1, 0.2, 0.3, 0.4, 0.5]),
    ]
    nodes = [
        helper.make_node(
            "QuantizeLinear", ["x", "scale"], ["q"], axis=0, output_dtype=TensorProto.FLOAT8E4M3FN
        ),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["w_float"], axis=1),
    ]
    outputs = [
        helper.make_tensor_value_info("q", TensorProto.FLOAT8E4M3FN, [3, 4]),
        helper.make_tensor_value_info("w_float", TensorProto.FLOAT, [4, 5]),
    ]
    proto = _model(nodes, [x, w], outputs, initializers, opset=21)
    feed = {
        "x": np.float32([[0.1, -0.3, 1000, -1e6], [3.0, -7.5, 0.2, 9.0], [0.0, -0.0, 5.2, 4.4]]),
        "w": np.random.default_rng(2).integers(-8, 8, (4, 5)).astype(ml_dtypes.int4),
    }
    want_q, want_w = ReferenceEvaluator(proto).run(None, feed)
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    np.testing.assert_array_equal(got["q"].view(np.uint8), want_q.view(np.uint8))
    np.testing.assert_array_equal(got["w_float"], want_w)


def _float8_model() -> onnx.ModelProto:
    """A float8 input decoded and a float8 output encoded."""
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT8E4M3FN, [2, 3])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node("Cast", ["w"], ["w_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w_float", "x"], ["product"]),
        helper.make_node("Cast", ["product"], ["y"], to=TensorProto.FLOAT8E5M2),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT8E5M2, [2, 3])]
    return _model(nodes, [w, x], outputs, opset=19)


def test_a_float8_file_records_its_types_runs_and_validates_and_reads_back_refused(
    tmp_path: Path,
) -> None:
    """The written .tflite records the carried input and output, takes and gives float8 arrays
    (onnx's reference evaluator is the oracle: onnxruntime's Python API takes no float8 feeds),
    and reading it back is one exit-3 message naming them."""
    src = tmp_path / "float8.onnx"
    onnx.save(_float8_model(), src)
    out = tmp_path / "float8.tflite"
    feeds = {
        "w": np.float32([[0.5, -448, 3.25], [0.0, 17, -0.0]]).astype(ml_dtypes.float8_e4m3fn),
        "x": np.float32([[3.0, 200.0, -1.1], [5.0, 0.3, 1.0]]),
    }
    api.convert(src, out)
    written = read_tflite(out)
    assert written.carried_inputs == {"w": "FLOAT8E4M3FN"}
    assert written.carried_outputs == {"y": "FLOAT8E5M2"}
    got = TFLiteFramework().run(out, feeds)["y"]
    (want,) = ReferenceEvaluator(_float8_model()).run(None, feeds)
    assert got.dtype == ml_dtypes.float8_e5m2
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))

    back = CliRunner().invoke(cli, ["convert", str(out), "-o", str(tmp_path / "back.onnx")])
    assert back.exit_code == ExitCode.UNSUPPORTED, back.output
    assert "Traceback" not in back.output
    assert "input 'w' (FLOAT8E4M3FN)" in back.output
    assert "output 'y' (FLOAT8E5M2)" in back.output
    assert not (tmp_path / "back.onnx").exists()


def test_an_op_computing_on_a_carried_type_is_refused_naming_the_node(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    nodes = [
        helper.make_node("Cast", ["x"], ["q"], to=TensorProto.FLOAT8E4M3FN, name="to_float8"),
        helper.make_node("Pad", ["q", "pads"], ["y"], name="pad_float8"),
    ]
    pads = helper.make_tensor("pads", TensorProto.INT64, [2], [1, 1])
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [6])]
    src = tmp_path / "pad.onnx"
    onnx.save(_model(nodes, [x], outputs, [pads], opset=21), src)
    out = tmp_path / "pad.tflite"
    result = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)])
    assert result.exit_code == ExitCode.UNSUPPORTED, result.output
    assert "pad_float8" in result.output and "FLOAT8E4M3FN" in result.output
    assert "to_float8" not in result.output
    assert not out.exists()


def test_a_scalar_bitcast_stays_a_scalar() -> None:
    """TFLite's BITCAST of a rank-0 tensor gives shape [1]; the export reshapes it back."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [])
    node = helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT32)
    feed = {"x": np.array(-1.5, np.float32)}
    got = run_export(to_tflite(ir.from_proto(_model([node], [x], [y], opset=26))), feed)["y"]
    assert got.shape == ()
    assert got == feed["x"].view(np.int32)


def test_casts_between_carried_types_movement_ops_and_a_float8_weight_match_the_reference() -> None:
    """float8 <-> int4, float8 -> float8/bool/int32/float16, uint8/float16/double sources, a
    float8 initializer, an int4 Constant, and Transpose/Concat/Reshape passing carriers through."""
    f8, i4 = TensorProto.FLOAT8E4M3FN, TensorProto.INT4
    inputs = [
        helper.make_tensor_value_info("a", f8, [2, 3]),
        helper.make_tensor_value_info("i", i4, [2, 3]),
        helper.make_tensor_value_info("u", TensorProto.UINT8, [2, 3]),
        helper.make_tensor_value_info("h", TensorProto.FLOAT16, [2, 3]),
        helper.make_tensor_value_info("d", TensorProto.DOUBLE, [2, 3]),
    ]
    weight = np.float32([[1.5, -2, 300], [0.1, 7, -0.02]]).astype(ml_dtypes.float8_e5m2)
    initializers = [
        onnx.numpy_helper.from_array(weight, "k"),
        helper.make_tensor("shape", TensorProto.INT64, [1], [6]),
    ]
    casts = [
        ("a", "a_i4", i4, {}),
        ("i", "i_f8", f8, {}),
        ("a", "a_e5", TensorProto.FLOAT8E5M2, {}),
        ("a", "a_bool", TensorProto.BOOL, {}),
        ("a", "a_i32", TensorProto.INT32, {}),
        ("a", "a_f16", TensorProto.FLOAT16, {}),
        ("i", "i_i8", TensorProto.INT8, {}),
        ("u", "u_f8", f8, {}),
        ("h", "h_e8", TensorProto.FLOAT8E8M0, {"round_mode": "nearest"}),
        ("d", "d_f8", f8, {"saturate": 0}),
        ("k", "k_f", TensorProto.FLOAT, {}),
        ("c", "c_f", TensorProto.FLOAT, {}),
    ]
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", i4, [2], [-8, 7]))
    ]
    nodes += [helper.make_node("Cast", [s], [o], to=t, **a) for s, o, t, a in casts]
    nodes += [
        helper.make_node("Transpose", ["a"], ["a_t"], perm=[1, 0]),
        helper.make_node("Concat", ["a", "a"], ["a_cat"], axis=0),
        helper.make_node("Reshape", ["i", "shape"], ["i_flat"]),
    ]
    types = [t for _, _, t, _ in casts] + [f8, f8, i4]
    outputs = [
        helper.make_tensor_value_info(node.output[0], t, None)
        for node, t in zip(nodes[1:], types, strict=True)
    ]
    proto = _model(nodes, inputs, outputs, initializers)
    rng = np.random.default_rng(0)
    feed = {
        "a": (rng.standard_normal((2, 3)) * 50).astype(np.float32).astype(ml_dtypes.float8_e4m3fn),
        "i": rng.integers(-8, 8, (2, 3)).astype(ml_dtypes.int4),
        "u": np.uint8([[0, 1, 200], [255, 17, 100]]),
        "h": np.float16([[0.3, -1e-5, 600], [2.5, 0, -3]]),
        "d": np.float64([[0.3, 1e6, -470], [2.5, np.nan, -3]]),
    }
    names = [o.name for o in outputs]
    expected = dict(zip(names, ReferenceEvaluator(proto).run(None, feed), strict=True))
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        if want.dtype.itemsize == 1 and want.dtype != np.bool_:
            np.testing.assert_array_equal(got[name].view(np.uint8), want.view(np.uint8), name)
        else:
            np.testing.assert_array_equal(got[name], want, name)


def test_float16_weights_are_refused_where_types_are_carried(tmp_path: Path) -> None:
    """float16 weights would round the exact tables (E8M0's span 2**-127..2**127)."""
    src = tmp_path / "float8.onnx"
    onnx.save(_float8_model(), src)
    out = tmp_path / "float8.tflite"
    with pytest.raises(UnsupportedError, match="FLOAT8E4M3FN, FLOAT8E5M2") as error:
        api.convert(src, out, precision="float16")
    assert error.value.hint == "convert with --precision float32"
    assert not out.exists()
