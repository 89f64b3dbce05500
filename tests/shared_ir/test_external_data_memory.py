"""External data is mapped once per file, and every float dtype is mapped, never copied.

onnx_ir maps a whole external-data file once per tensor: n tensors of one file reserve n times its
size of address space, so under ``ulimit -v`` (shared clusters, containers) a conversion failed with
ENOMEM. The oracle is the kernel: ``RLIMIT_AS`` in a subprocess, and ``/proc/self/maps`` for which
file backs a parameter's memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx_ir as ir
import pytest

from unframe.shared_ir.io import load_onnx, save_onnx

from helpers import mapped_ranges

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")

LAYERS = 24
WIDTH = 512  # 24 weights of 1 MiB (float32) in one external-data file


def _chain_model(
    path: Path, dtype: ir.DataType, *, layers: int = LAYERS, width: int = WIDTH
) -> int:
    """x @ W0 @ W1 ... with every weight in ``path.name + '.data'``; returns the weights' bytes."""
    rng = np.random.default_rng(0)
    numpy_dtype = dtype.numpy()
    x = ir.Value(name="x", type=ir.TensorType(dtype), shape=ir.Shape([2, width]))
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": 17}, name="chain")
    current = x
    total = 0
    for index in range(layers):
        weight = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(numpy_dtype)
        total += weight.nbytes
        initializer = ir.Value(
            name=f"w{index}",
            type=ir.TensorType(dtype),
            shape=ir.Shape([width, width]),
            const_value=ir.Tensor(weight, name=f"w{index}"),
        )
        graph.register_initializer(initializer)
        node = ir.node("MatMul", [current, initializer], name=f"matmul{index}")
        node.outputs[0].name = f"y{index}"
        node.outputs[0].type = ir.TensorType(dtype)
        node.outputs[0].shape = ir.Shape([2, width])
        graph.append(node)
        current = node.outputs[0]
    graph.outputs.append(current)
    save_onnx(ir.Model(graph, ir_version=10), path, external_data=True)
    return total


def test_external_data_is_one_mapping_per_file(tmp_path: Path) -> None:
    source = tmp_path / "chain.onnx"
    _chain_model(source, ir.DataType.FLOAT, layers=4, width=64)
    model = load_onnx(source)
    arrays = [value.const_value.numpy() for value in model.graph.initializers.values()]
    bases = set()
    for array in arrays:
        base: object = array
        while isinstance(base, np.ndarray | memoryview):
            base = base.base if isinstance(base, np.ndarray) else base.obj
        bases.add(id(base))
    assert len(bases) == 1  # one mapping holds every tensor's bytes
    expected = np.fromfile(f"{source}.data", dtype=np.float32, count=64 * 64).reshape(64, 64)
    np.testing.assert_array_equal(arrays[0], expected)


_UNDER_LIMIT = """
import json, os, resource, sys
from pathlib import Path
from unframe.converters import api
small, big, framework, suffix, out, weight_bytes = sys.argv[1:7]
# The baseline: the address space after converting the small model (every import made, the
# runtime's threads started), so the limit measures only what the weights add.
api.convert(small, Path(out) / ("small" + suffix), target=framework, force=True)
with open("/proc/self/status") as status:
    fields = dict(line.split(":", 1) for line in status)
baseline = int(fields["VmPeak"].split()[0]) * 1024
limit = baseline + 3 * int(weight_bytes)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
api.convert(big, Path(out) / ("big" + suffix), target=framework, force=True)
print(json.dumps({"baseline": baseline, "limit": limit}))
"""


@pytest.mark.parametrize(("framework", "suffix"), [("pytorch", ".pt2"), ("caffe2", "_net")])
def test_conversion_fits_three_times_the_weights_of_address_space(
    tmp_path: Path, framework: str, suffix: str
) -> None:
    if framework == "pytorch":
        pytest.importorskip("torch", reason="the PyTorch target needs torch")
    small, big = tmp_path / "small.onnx", tmp_path / "big.onnx"
    _chain_model(small, ir.DataType.FLOAT, layers=2, width=16)
    weight_bytes = _chain_model(big, ir.DataType.FLOAT)
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_LIMIT, str(small), str(big), framework, suffix, str(tmp_path)]
        + [str(weight_bytes)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["limit"] - figures["baseline"] == 3 * weight_bytes
    assert (tmp_path / f"big{suffix}").exists()


@pytest.mark.parametrize("dtype", [ir.DataType.BFLOAT16, ir.DataType.FLOAT16, ir.DataType.FLOAT])
def test_pytorch_parameters_map_the_data_file(tmp_path: Path, dtype: ir.DataType) -> None:
    torch = pytest.importorskip("torch", reason="the PyTorch backend needs torch")
    from unframe.backends.pytorch import to_torch

    source = tmp_path / "chain.onnx"
    _chain_model(source, dtype, layers=2, width=64)
    module = to_torch(load_onnx(source))
    data_file = str((tmp_path / "chain.onnx.data").resolve())
    ranges = mapped_ranges(tmp_path / "chain.onnx.data")
    parameters = dict(module.named_parameters())
    assert len(parameters) == 2
    for name, parameter in parameters.items():
        assert (
            parameter.dtype
            == {
                ir.DataType.BFLOAT16: torch.bfloat16,
                ir.DataType.FLOAT16: torch.float16,
                ir.DataType.FLOAT: torch.float32,
            }[dtype]
        )
        address = parameter.data_ptr()
        assert any(start <= address < end for start, end in ranges), f"{name} was copied"
    if dtype == ir.DataType.BFLOAT16:
        values = np.fromfile(data_file, dtype=ml_dtypes.bfloat16, count=64 * 64).reshape(64, 64)
        first = next(iter(parameters.values())).detach().float().numpy()
        np.testing.assert_array_equal(first, values.astype(np.float32))
