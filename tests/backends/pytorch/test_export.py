"""``.pt2`` export: dynamic axes stay dynamic, files load with plain torch, control flow is real."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytest

torch = pytest.importorskip("torch")

from unframe.backends.pytorch import export_program, run_native, save_pt2, to_torch  # noqa: E402


def _load_models() -> Any:
    spec = importlib.util.spec_from_file_location(
        "unframe_pytorch_backend_test_models", Path(__file__).with_name("pt_models.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_models = _load_models()


def _ir(model: onnx.ModelProto) -> ir.Model:
    return ir.from_proto(model)


def test_dynamic_batch_stays_dynamic(tmp_path: Path) -> None:
    model = _models.dynamic_cnn()
    program = export_program(_ir(model))
    placeholder = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == "x")
    batch = placeholder.meta["val"].shape[0]
    assert isinstance(batch, torch.SymInt), "batch was specialised to the example size"
    # No computed shape baked the example's batch size into a reshape.
    assert "to_int_list" not in str(program.graph)
    module = program.module()
    for size in (3, 7):
        x = np.random.default_rng(size).standard_normal((size, 3, 8, 8)).astype(np.float32)
        (got,) = module(torch.from_numpy(x))
        (want,) = _models.run_onnxruntime(model, {"x": x})
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=1e-4)


def test_pt2_loads_in_fresh_process_without_unframe(tmp_path: Path) -> None:
    model = _models.dynamic_cnn()
    path = tmp_path / "model.pt2"
    save_pt2(_ir(model), path)
    x = np.random.default_rng(1).standard_normal((4, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, json\n"
        "sys.modules['unframe'] = None  # any import of unframe would now fail\n"
        "import numpy as np, torch\n"
        f"m = torch.export.load({str(path)!r}).module()\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "(y,) = m(x)\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y.detach().numpy())\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.startswith('unframe'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["unframe"]  # only the blocker
    (want,) = _models.run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-4, atol=1e-4)
    # run_native reads the same file and keys outputs by the ONNX names.
    outputs = run_native(path, {"x": x})
    assert list(outputs) == ["y"]
    np.testing.assert_allclose(outputs["y"], want, rtol=1e-4, atol=1e-4)


def test_if_is_real_control_flow() -> None:
    model = _models.if_model()
    module = to_torch(_ir(model))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for flag in (True, False):
        cond = np.array(flag)
        (got,) = module(torch.from_numpy(cond), torch.from_numpy(x))
        (want,) = _models.run_onnxruntime(model, {"cond": cond, "x": x})
        np.testing.assert_allclose(got.detach().numpy(), want)
    program = export_program(_ir(model))
    assert "torch.ops.higher_order.cond" in program.graph_module.code
    exported = program.module()
    results = {}
    for flag in (True, False):
        (got,) = exported(torch.tensor(flag), torch.from_numpy(x))
        results[flag] = got.detach().numpy()
        (want,) = _models.run_onnxruntime(model, {"cond": np.array(flag), "x": x})
        np.testing.assert_allclose(results[flag], want)
    assert not np.allclose(results[True], results[False])


def test_loop_is_real_control_flow() -> None:
    model = _models.loop_model()
    x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    module = to_torch(_ir(model))
    program = export_program(_ir(model))
    assert "while_loop" in program.graph_module.code
    exported = program.module()
    for trips in (0, 2, 5):
        trip = np.array(trips, dtype=np.int64)
        (want,) = _models.run_onnxruntime(model, {"trip_count": trip, "x": x})
        for runnable in (module, exported):
            (got,) = runnable(torch.from_numpy(trip), torch.from_numpy(x))
            np.testing.assert_allclose(got.detach().numpy(), want)


def test_model_names_are_sanitized(tmp_path: Path) -> None:
    model = _models.nasty_names_model()
    module = to_torch(_ir(model))
    code = module.code
    compile(code, "<generated>", "exec")  # valid Python
    for name in _models.NASTY:
        if not name.isidentifier():
            assert name not in code
    assert not re.search(r"\b(class|lambda|import)\b", code)
    assert "__init__" not in code
    for name, _ in [*module.named_parameters(), *module.named_buffers()]:
        assert name.isidentifier()
    placeholders = [n.target for n in module.graph.nodes if n.op == "placeholder"]
    assert all(p.isidentifier() for p in placeholders)
    a = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    (got,) = module(torch.from_numpy(a), torch.from_numpy(b))
    (want,) = _models.run_onnxruntime(model, {_models.NASTY[0]: a, _models.NASTY[6]: b})
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5)
    path = tmp_path / "nasty.pt2"
    save_pt2(_ir(model), path)
    outputs = run_native(path, {"a": a, "b": b})
    np.testing.assert_allclose(outputs[_models.NASTY[7]], want, rtol=1e-5)


def test_module_is_trainable_and_shares_weights() -> None:
    model = _ir(_models.dynamic_cnn())
    source = model.graph.initializers["conv.w"]
    assert source.const_value is not None
    array = np.array(source.const_value.numpy())  # an in-memory (writable) weight
    source.const_value = ir.Tensor(array, name="conv.w")
    module = to_torch(model)
    params = dict(module.named_parameters())
    assert set(params) == {"conv_w", "conv_b", "fc_w", "fc_b"}
    assert all(p.requires_grad for p in params.values())
    assert params["conv_w"].data_ptr() == array.__array_interface__["data"][0]  # no copy
    x = torch.randn(2, 3, 8, 8)
    (y,) = module(x)
    y.sum().backward()
    assert params["conv_w"].grad is not None


def test_external_weights_are_mapped_copy_on_write(tmp_path: Path) -> None:
    import onnx

    proto = _models.dynamic_cnn()
    path = tmp_path / "cnn.onnx"
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)  # onnx.save moves the weights of the message it saves
    onnx.save(copy, path, save_as_external_data=True, location="cnn.data", size_threshold=0)
    before = (tmp_path / "cnn.data").read_bytes()
    module = to_torch(ir.load(path))
    weight = dict(module.named_parameters())["fc_w"]
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (want,) = _models.run_onnxruntime(proto, {"x": x})
    (got,) = module(torch.from_numpy(x))
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        weight.mul_(0.0)  # parameters stay writable (training) ...
    assert (tmp_path / "cnn.data").read_bytes() == before  # ... and the file is untouched


def test_loop_with_scan_outputs_and_constant_trip_count_exports() -> None:
    model = _models.loop_scan_model(4)
    x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    want = _models.run_onnxruntime(model, {"x": x})
    exported = export_program(_ir(model)).module()
    got = exported(torch.from_numpy(x))
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(actual.detach().numpy(), expected)


def test_scan_exports_with_a_dynamic_sequence_length(tmp_path: Path) -> None:
    model = _models.scan_model()
    path = tmp_path / "scan.pt2"
    save_pt2(_ir(model), path)
    module = torch.export.load(str(path)).module()
    rng = np.random.default_rng(3)
    init = rng.standard_normal(3).astype(np.float32)
    for length in (2, 5, 9):  # the length the export saw, and others
        xs = rng.standard_normal((length, 3)).astype(np.float32)
        want = _models.run_onnxruntime(model, {"init": init, "xs": xs})
        got = module(torch.from_numpy(init), torch.from_numpy(xs))
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_inputs_sharing_a_named_dim_export_together() -> None:
    """A GRU's X [seq, batch, 4] and sequence_lens [batch]: one example size for ``batch``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    hidden = 3
    weights = {
        "W": rng.standard_normal((1, 3 * hidden, 4)).astype(np.float32),
        "R": rng.standard_normal((1, 3 * hidden, hidden)).astype(np.float32),
    }
    graph = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R", "", "lens"], ["Y", "Y_h"], hidden_size=hidden)],
        "gru_lens",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", "batch", 4]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    module = export_program(_ir(model)).module()
    for seq, batch in ((5, 3), (8, 2)):
        x = rng.standard_normal((seq, batch, 4)).astype(np.float32)
        lens = rng.integers(1, seq + 1, batch).astype(np.int32)
        want = _models.run_onnxruntime(model, {"X": x, "lens": lens})
        got = module(torch.from_numpy(x), torch.from_numpy(lens))
        for actual, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_shape_values_and_folded_constants_stay_dynamic() -> None:
    model = _models.shape_output_model()
    program = export_program(_ir(model))
    module = program.module()
    for batch in (3, 6):
        x = np.ones((batch, 3), dtype=np.float32)
        shape, y = module(torch.from_numpy(x))
        assert shape.tolist() == [batch, 3]
        want = _models.run_onnxruntime(model, {"x": x})
        np.testing.assert_array_equal(y.detach().numpy(), want[1])
