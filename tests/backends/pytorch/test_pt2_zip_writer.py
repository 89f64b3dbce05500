"""``.pt2`` archives from ``Pt2ZipWriter`` against torch's own writer, Python's zipfile and torch's reader."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unframe.backends.pytorch.native import pt2_zip  # noqa: E402
from unframe.backends.pytorch.native.pt2_weights import weights_written_from_storage  # noqa: E402
from unframe.backends.pytorch.native.pt2_zip import ALIGNMENT, Pt2ZipWriter, crc32  # noqa: E402

_ID = ".data/serialization_id"


class Weights(torch.nn.Module):
    """A weight over 1 MiB (CRC on the second thread), a zero-size, a transposed, a shared-storage,
    a bfloat16 and a float16 one."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.big = torch.nn.Parameter(torch.randn(64, 8192, generator=generator))  # 2 MiB
        self.small = torch.nn.Parameter(torch.randn(64, dtype=torch.float16, generator=generator))
        self.brain16 = torch.nn.Parameter(
            torch.randn(64, dtype=torch.bfloat16, generator=generator)
        )
        self.register_buffer("empty", torch.zeros(0, 64))
        table = torch.randn(4, 64, generator=generator)
        self.register_buffer("table", table)
        self.register_buffer("row", table[1])  # a view into the table's storage
        self.register_buffer("flipped", torch.randn(64, 8, generator=generator).T)  # not contiguous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x @ self.big[:, :64]) + self.small.float() + self.brain16.float() + self.row
        return y + self.table.sum(0) + self.empty.sum(0) + self.flipped.sum(0)


def _records(path: Path) -> dict[str, bytes]:
    """Each record's bytes keyed by its name without the archive folder, in archive order."""
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def _data_offsets(path: Path) -> dict[str, int]:
    """Where each record's data starts, read from its local header (as torch's reader does)."""
    raw = path.read_bytes()
    offsets = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
            offsets[info.filename] = info.header_offset + 30 + name_length + extra_length
    return offsets


@pytest.fixture(scope="module")
def saved(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[torch.nn.Module, torch.Tensor, Path, Path]:
    """The same program saved by torch's writer and by ours."""
    folder = tmp_path_factory.mktemp("pt2")
    module = Weights().eval()
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    program = torch.export.export(module, (x,), strict=False)
    theirs, ours = folder / "theirs.pt2", folder / "ours.pt2"
    torch.export.save(program, str(theirs), extra_files={"note.json": "{}"})
    with weights_written_from_storage():
        torch.export.save(program, str(ours), extra_files={"note.json": "{}"})
    return module, x, theirs, ours


def test_loads_in_torch_with_the_source_outputs(saved: tuple) -> None:
    module, x, _, ours = saved
    loaded = torch.export.load(str(ours))
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.module()(x).numpy(), module(x).numpy())
    for name, tensor in module.state_dict().items():
        read = loaded.state_dict.get(name, loaded.constants.get(name))
        assert read is not None, name
        assert read.dtype == tensor.dtype and read.shape == tensor.shape, name
        assert torch.equal(
            read.contiguous().view(torch.uint8), tensor.contiguous().view(torch.uint8)
        )


def test_every_crc_checks_out_in_python_zipfile(saved: tuple) -> None:
    with zipfile.ZipFile(saved[3]) as archive:
        assert archive.testzip() is None


def test_records_match_torch_writer_name_for_name_byte_for_byte(saved: tuple) -> None:
    _, _, theirs, ours = saved
    expected, written = _records(theirs), _records(ours)
    assert list(written) == list(expected)
    for name, data in expected.items():
        if name != _ID:  # partly a hash of the names (std::hash in torch's writer)
            assert written[name] == data, name
    # The id's second half combines the records' CRC32s in write order, as torch's does.
    assert written[_ID][20:] == expected[_ID][20:]
    assert len(written[_ID]) == 40 and written[_ID].isdigit()


def test_data_is_64_byte_aligned_as_torch_writes_it(saved: tuple) -> None:
    _, _, theirs, ours = saved
    assert ALIGNMENT == 64
    assert all(offset % 64 == 0 for offset in _data_offsets(theirs).values())  # torch's own rule
    assert all(offset % 64 == 0 for offset in _data_offsets(ours).values())


def test_a_failed_save_leaves_no_file(tmp_path: Path) -> None:
    module = Weights().eval()
    program = torch.export.export(module, (torch.randn(3, 64),), strict=False)
    path = tmp_path / "broken.pt2"
    # torch refuses the non-string extra file after the weights are written; its own writer
    # would then still finish a valid-looking archive without the rest.
    with weights_written_from_storage(), pytest.raises(AssertionError):
        torch.export.save(program, str(path), extra_files={"note.json": 5})  # type: ignore[dict-item]
    assert not path.exists()


def test_a_buffer_target_goes_through_torch_writer(tmp_path: Path) -> None:
    import io

    module = Weights().eval()
    x = torch.randn(3, 64)
    program = torch.export.export(module, (x,), strict=False)
    buffer = io.BytesIO()
    with weights_written_from_storage():
        torch.export.save(program, buffer)
    buffer.seek(0)
    with torch.no_grad():
        np.testing.assert_array_equal(
            torch.export.load(buffer).module()(x).numpy(), module(x).numpy()
        )


def test_crc32_continues_as_zlib_computes_it() -> None:
    assert pt2_zip._isal_crc32() is not None, "isal is an install requirement of unframe[pytorch]"  # noqa: SLF001
    data = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    view = memoryview(data)
    assert crc32(view) == zlib.crc32(data)
    assert crc32(view[12345:], crc32(view[:12345])) == zlib.crc32(data)
    assert crc32(memoryview(b"")) == 0


@pytest.mark.parametrize("crc_library", ["isal", "zlib"])
@pytest.mark.parametrize("zip64_limit", [0xFFFFFFFF, 4096], ids=["zip32", "zip64-forced"])
def test_chunks_and_zip64_read_back_by_zipfile_and_torch_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64_limit: int, crc_library: str
) -> None:
    """A record over many chunks, one of zero bytes, small ones; zip64 fields from 4 KiB."""
    if crc_library == "zlib":
        monkeypatch.setattr(pt2_zip, "_isal_crc32", lambda: None)
    path = tmp_path / "records.pt2"
    big = torch.arange(3 << 18, dtype=torch.int32)  # 3 MiB: > the inline-CRC size, 48 chunks
    contents = {
        "small": b"abc",
        "data/big": big.numpy().tobytes(),
        "data/empty": b"",
        "data/middle": bytes(range(256)) * 40,  # 10 KiB: above the forced zip64 limit
    }
    writer = Pt2ZipWriter(str(path), zip64_limit=zip64_limit, chunk_bytes=64 << 10)
    writer.set_min_version(6)
    writer.write_record("small", b"abc", 3)
    writer.write_record("data/big", big.untyped_storage(), big.untyped_storage().nbytes())
    writer.write_record("data/empty", b"", 0)
    writer.write_record("data/middle", contents["data/middle"], len(contents["data/middle"]))
    assert writer.get_all_written_records() == set(contents)
    writer.write_end_of_file()

    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        infos = {info.filename: info for info in archive.infolist()}
        for name, data in contents.items():
            assert archive.read(f"records/{name}") == data, name
        assert archive.read("records/.data/version") == b"6\n"
        assert archive.read("records/byteorder") == b"little"
    zip64_tagged = {name for name, info in infos.items() if info.extra[:2] == b"\x01\x00"}
    if zip64_limit < 0xFFFFFFFF:  # every record past 4 KiB: its offset, or its size too
        assert zip64_tagged == {n for n, info in infos.items() if info.header_offset >= 4096} | {
            "records/data/big",
            "records/data/middle",
        }
    else:
        assert not zip64_tagged
    assert all(offset % 64 == 0 for offset in _data_offsets(path).values())

    reader = torch._C.PyTorchFileReader(str(path))  # miniz, as torch.export.load reads
    for name, data in contents.items():
        assert reader.get_record(name) == data, name


def test_a_record_twice_is_refused(tmp_path: Path) -> None:
    writer = Pt2ZipWriter(str(tmp_path / "twice.pt2"))
    writer.write_record("a", b"1", 1)
    with pytest.raises(ValueError, match="written twice"):
        writer.write_record("a", b"2", 1)
    writer.abort()
    assert not (tmp_path / "twice.pt2").exists()


def test_save_pt2_writes_through_our_writer_and_runs_as_onnxruntime(tmp_path: Path) -> None:
    import onnx_ir as ir
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from unframe.backends.pytorch import save_pt2

    weight = np.random.default_rng(0).standard_normal((16, 600), dtype=np.float32)
    # 1.2 MiB: over the size whose CRC is computed inline, so it goes to the second thread.
    big = np.random.default_rng(1).standard_normal((600, 512), dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("MatMul", ["h", "b"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 512])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(big, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "model.pt2"
    save_pt2(ir.from_proto(proto), path)

    raw = path.read_bytes()
    assert struct.unpack_from("<H", raw, 4)[0] == 20  # our header; torch's miniz writes 0 there
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    x = np.random.default_rng(2).standard_normal((2, 16), dtype=np.float32)
    (expected,) = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    with torch.no_grad():
        got = torch.export.load(str(path)).module()(torch.from_numpy(x))
    got = got[0] if isinstance(got, (tuple, list)) else got
    # Sums of 600 products in another order: float32 rounding, scaled by the output's size.
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_saves_in_two_threads_leave_torch_as_it_was(tmp_path: Path) -> None:
    import threading

    from torch.export.pt2_archive import _package

    originals = (_package._get_raw_tensor_bytes, _package.PT2ArchiveWriter)  # noqa: SLF001
    module = Weights().eval()
    x = torch.randn(3, 64)
    program = torch.export.export(module, (x,), strict=False)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def save(path: Path) -> None:
        try:
            start.wait()
            for _ in range(3):
                with weights_written_from_storage():
                    torch.export.save(program, str(path))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=save, args=(tmp_path / f"{i}.pt2",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert (_package._get_raw_tensor_bytes, _package.PT2ArchiveWriter) == originals  # noqa: SLF001
    for i in range(2):
        with zipfile.ZipFile(tmp_path / f"{i}.pt2") as archive:
            assert archive.testzip() is None
        with torch.no_grad():
            loaded = torch.export.load(str(tmp_path / f"{i}.pt2")).module()
            np.testing.assert_array_equal(loaded(x).numpy(), module(x).numpy())
