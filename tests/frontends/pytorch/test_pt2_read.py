"""``.pt2`` weights mapped from the archive, not copied (``backends/pytorch/native/pt2_read.py``).

The oracles: the module the archive was exported from (its parameters and outputs), torch's own
``torch.export.load`` run without unframe's changes, and the kernel's ``/proc/self/maps`` for which
file backs a weight's memory.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest

from helpers import mapped_ranges

torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")

from unframe.backends.pytorch import save_pt2  # noqa: E402
from unframe.frontends.pytorch.loading import load_exported_program  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/maps is Linux's")


class _Net(torch.nn.Module):
    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.first = torch.nn.Linear(96, 80, dtype=dtype)
        self.second = torch.nn.Linear(80, 8, dtype=dtype)
        self.register_buffer("offset", torch.linspace(-1, 1, 8, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x))) + self.offset


def _inside(tensor: torch.Tensor, ranges: list[tuple[int, int]]) -> bool:
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    return any(low <= start and end <= high for low, high in ranges)


def _saved(tmp_path: Path, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.Tensor, Path]:
    torch.manual_seed(0)
    net = _Net(dtype).eval()
    x = torch.randn(3, 96, dtype=dtype)
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (x,)), path)
    return net, x, path


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_torch_written_weights_are_mapped_and_equal(tmp_path: Path, dtype: torch.dtype) -> None:
    net, x, path = _saved(tmp_path, dtype)
    program = load_exported_program(path)
    ranges = mapped_ranges(path)
    expected = dict(net.state_dict())
    loaded = program.state_dict | dict(program.constants)
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name
        assert _inside(loaded[name], ranges), f"{name} is not read from a mapping of the file"
    with torch.no_grad():
        assert torch.equal(program.module()(x), net(x))


def test_a_weight_changed_in_memory_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    _net, _x, path = _saved(tmp_path, torch.float32)
    before = path.read_bytes()
    program = load_exported_program(path)
    with torch.no_grad():
        program.state_dict["first.weight"].fill_(7.0)  # copy-on-write: this process only
    assert path.read_bytes() == before
    assert torch.equal(load_exported_program(path).state_dict["first.weight"], _net.first.weight)


def test_unframe_written_archive_is_read_back_mapped(tmp_path: Path) -> None:
    """A ``.pt2`` from unframe's own zip writer (``save_pt2``), its weights the ONNX model's."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((32, 16)).astype(np.float32)
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([2, 32]))
    w = ir.Value(name="w", const_value=ir.tensor(weight, name="w"))
    node = ir.node("MatMul", [x, w], num_outputs=1)
    node.outputs[0].name = "y"
    model = ir.Model(
        ir.Graph([x], node.outputs, nodes=[node], initializers=[w], opset_imports={"": 18}),
        ir_version=10,
    )
    path = tmp_path / "matmul.pt2"
    save_pt2(model, path)
    program = load_exported_program(path)
    (tensor,) = [t for t in (program.state_dict | dict(program.constants)).values() if t.numel()]
    assert np.array_equal(tensor.detach().numpy(), weight)
    assert _inside(tensor, mapped_ranges(path))
    feed = rng.standard_normal((2, 32)).astype(np.float32)
    with torch.no_grad():
        (got,) = program.module()(torch.from_numpy(feed))
    np.testing.assert_allclose(got.numpy(), feed @ weight, rtol=1e-5, atol=1e-5)


def test_compressed_records_are_read_the_torch_way(tmp_path: Path) -> None:
    net, x, path = _saved(tmp_path, torch.float32)
    deflated = tmp_path / "deflated.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(deflated, "w") as out:
        for member in source.infolist():
            out.writestr(member.filename, source.read(member), zipfile.ZIP_DEFLATED)
    program = load_exported_program(deflated)
    ranges = mapped_ranges(deflated)
    for name, tensor in net.state_dict().items():
        loaded = (program.state_dict | dict(program.constants))[name]
        assert torch.equal(loaded, tensor), name
        assert not _inside(loaded, ranges), name  # copied by torch's reader, not mapped
    with torch.no_grad():
        assert torch.equal(program.module()(x), net(x))


def test_program_is_the_one_torch_reads(tmp_path: Path) -> None:
    """The schema objects built with cached type hints: the same graph and signature as torch's."""
    _net, _x, path = _saved(tmp_path, torch.float32)
    ours = load_exported_program(path)
    torchs = torch.export.load(str(path))  # torch's reader, nothing of unframe's in the way
    assert str(ours.graph) == str(torchs.graph)
    assert str(ours.graph_signature) == str(torchs.graph_signature)
    assert ours.range_constraints.keys() == torchs.range_constraints.keys()
