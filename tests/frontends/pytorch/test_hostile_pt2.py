"""Hostile and broken ``.pt2`` files: one error line, exit 2 or 3, nothing written, nothing hangs.

Covers special files (a FIFO, a link to ``/dev/zero``), zip members that lie about their size, a
size limit, a member name that is not UTF-8, torch's own log lines, and a seeded mutation fuzz of
a small valid archive written by ``torch.export.save``.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fuzzing import Importer, exit_histogram, failures, pt2_importer, run_cases, warm_up

torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")

from unframe.cli.main import cli  # noqa: E402
from unframe.converters.framework import ConvertOptions  # noqa: E402
from unframe.frontends.pytorch import load_pytorch  # noqa: E402
from unframe.frontends.pytorch.loading import MAX_PT2_BYTES_VARIABLE  # noqa: E402
from unframe.shared_ir.errors import BadInputError, LimitExceededError  # noqa: E402

UNFRAME = Path(sys.executable).with_name("unframe")
#: Fewer than the other importers' fuzz tests: a mutated archive that still loads costs ~1 s.
FUZZ_CASES = 100
FUZZ_SEED = 20261206
EXAMPLE = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


@pytest.fixture(scope="module")
def tiny() -> tuple[Tiny, bytes]:
    """The module and its ``torch.export.save`` archive."""
    torch.manual_seed(0)
    module = Tiny().eval()
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(module, (EXAMPLE,)), buffer)
    return module, buffer.getvalue()


@pytest.fixture
def torch_log() -> Iterator[io.StringIO]:
    """What torch's own log handlers would print on the terminal, caught instead."""
    caught = io.StringIO()
    handlers = [
        handler
        for name, logger in [("torch", logging.getLogger("torch"))]
        + list(logging.Logger.manager.loggerDict.items())
        if name == "torch" or name.startswith("torch.")
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    streams = [handler.setStream(caught) for handler in handlers]
    try:
        yield caught
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            if stream is not None:
                handler.setStream(stream)


def _one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("unframe: error: "), result.stderr
    return lines[0]


def _central_entry(data: bytes, name: str) -> int:
    """Offset of ``name``'s central directory record (the last copy of the name in the file)."""
    offset = data.rfind(name.encode()) - 46
    assert data[offset : offset + 4] == b"PK\x01\x02"
    return offset


def _weight_member(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return next(n for n in archive.namelist() if "/data/weights/weight_" in n)


# -- special files ----------------------------------------------------------------------------


def test_link_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    link = tmp_path / "x.pt2"
    link.symlink_to("/dev/zero")
    with pytest.raises(BadInputError) as info:
        load_pytorch(link, ConvertOptions())
    assert "x.pt2" in str(info.value) and "not a regular file (a character device)" in str(
        info.value
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_named_pt2_does_not_block(tmp_path: Path) -> None:
    """Run apart with a timeout: opening a FIFO for reading blocks until a writer comes."""
    fifo = tmp_path / "model.pt2"
    os.mkfifo(fifo)
    done = subprocess.run(
        [str(UNFRAME), "inspect", str(fifo)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"unframe: error: {fifo}: not a regular file (a FIFO); unframe reads models from regular "
        "files only"
    ]


# -- sizes ------------------------------------------------------------------------------------


def test_stored_member_declaring_more_than_the_archive(
    tiny: tuple[Tiny, bytes], tmp_path: Path
) -> None:
    _, data = tiny
    member = _weight_member(data)
    entry = _central_entry(data, member)
    forged = bytearray(data)
    forged[entry + 24 : entry + 28] = struct.pack("<I", 0xFFFF_FFF0)  # uncompressed size
    path = tmp_path / "huge.pt2"
    path.write_bytes(bytes(forged))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2
    line = _one_error_line(result)
    stored = 4294967280
    assert f"huge.pt2: loading the .pt2 program failed: member {member!r} declares {stored}" in line


def test_deflated_member_declaring_more_than_deflate_can_expand(
    tiny: tuple[Tiny, bytes], tmp_path: Path
) -> None:
    _, data = tiny
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as old,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new,
    ):
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
    deflated = buffer.getvalue()
    member = _weight_member(deflated)
    entry = _central_entry(deflated, member)
    compressed = struct.unpack("<I", deflated[entry + 20 : entry + 24])[0]
    forged = bytearray(deflated)
    forged[entry + 24 : entry + 28] = struct.pack("<I", compressed * 1032 + 1)
    path = tmp_path / "bomb.pt2"
    path.write_bytes(bytes(forged))
    with pytest.raises(BadInputError, match=f"member {member!r} declares {compressed * 1032 + 1}"):
        load_pytorch(path, ConvertOptions())


def test_archive_over_the_size_limit_says_how_to_raise_it(
    tiny: tuple[Tiny, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, data = tiny
    path = tmp_path / "tiny.pt2"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    monkeypatch.setenv(MAX_PT2_BYTES_VARIABLE, str(unpacked - 1))
    with pytest.raises(LimitExceededError) as info:
        load_pytorch(path, ConvertOptions())
    assert info.value.exit_code == 2
    assert f"unpacks to {unpacked} bytes, over the limit of {unpacked - 1}" in str(info.value)
    assert f"set {MAX_PT2_BYTES_VARIABLE}=" in str(info.value)
    monkeypatch.setenv(MAX_PT2_BYTES_VARIABLE, str(unpacked))
    assert [v.name for v in load_pytorch(path, ConvertOptions()).graph.inputs] == ["x"]


# -- names and torch's own output --------------------------------------------------------------


def test_member_name_not_utf8(tiny: tuple[Tiny, bytes], tmp_path: Path) -> None:
    _, data = tiny
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(buffer, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info.filename))
        new.writestr("tiny/extra/caf\u00e9", b"x")  # flagged UTF-8 by zipfile
    path = tmp_path / "name.pt2"
    path.write_bytes(buffer.getvalue().replace("caf\u00e9".encode(), b"caf\xff\xfe"))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2
    assert "name.pt2: loading the .pt2 program failed: a member name in the archive is not " in (
        _one_error_line(result)
    )


def test_torch_log_is_silent_unless_debug(
    tiny: tuple[Tiny, bytes], tmp_path: Path, torch_log: io.StringIO
) -> None:
    """An archive torch's reader refuses (its ``archive_format`` record renamed away)."""
    _, data = tiny
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = next(n for n in archive.namelist() if n.endswith("/archive_format"))
    entry = _central_entry(data, member)
    forged = bytearray(data)
    forged[entry + 46 + len(member) - 1] = ord("x")  # only the central directory's copy
    path = tmp_path / "renamed.pt2"
    path.write_bytes(bytes(forged))
    quiet = CliRunner().invoke(cli, ["inspect", str(path)])
    assert quiet.exit_code == 2
    line = _one_error_line(quiet)
    assert "renamed.pt2: loading the .pt2 program failed: RuntimeError: " in line
    assert "archive_format" in line  # torch's own reason, not "check the warnings above"
    assert not torch_log.getvalue()
    debug = CliRunner().invoke(cli, ["--debug", "inspect", str(path)])
    assert debug.exit_code == 2
    assert "Ran into the following error when deserializing" in torch_log.getvalue()
    assert "Traceback" in debug.stderr  # unframe's own, under --debug


# -- seeded mutation fuzz ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed_importer(tmp_path_factory: pytest.TempPathFactory) -> Importer:
    """Exported, and run once through every command, before the cases watch torch's log."""
    importer = pt2_importer()
    assert set(warm_up(importer, tmp_path_factory.mktemp("pristine")).values()) == {0}
    return importer


def test_mutated_pt2_files_fail_cleanly(
    fuzzed_importer: Importer,
    tmp_path: Path,
    torch_log: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The shared harness (``tests/fuzzing.py``): bytes and zip records of the archive mutated,
    converted to ONNX and Caffe2 or inspected; exit 0 only where torch's own loader still gives
    the module's outputs (and onnxruntime on the written ONNX does too)."""
    importer = fuzzed_importer
    results = run_cases(importer, FUZZ_SEED, range(FUZZ_CASES), tmp_path)
    assert not failures(results), failures(results)
    assert not torch_log.getvalue(), f"torch logged:\n{torch_log.getvalue()}"
    leaked = capfd.readouterr()
    assert not leaked.err and not leaked.out, leaked
    codes = exit_histogram(results)
    assert codes.get(2, 0) + codes.get(3, 0) > FUZZ_CASES // 2, codes
    assert not list(tmp_path.iterdir())  # no case file, output or staging folder left
