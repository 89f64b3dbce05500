"""Seeded mutations of a small ``.onnx`` (and of one with external data) through every command.

The model has five initializers, a Conv and an If whose branches read outer values; each case
mutates it (bytes, or protobuf fields: lengths, tags, varints, names and locations, dropped and
repeated fields) and converts it to ONNX, Caffe2 and PyTorch, or inspects it. The harness
(``tests/fuzzing.py``) checks one error line naming the input with exit 2 or 3, or exit 0 only where
onnx's checker and onnxruntime still accept the mutated file; no traceback, nothing left at ``-o``,
no staging folder, bounded time and peak RSS. ``make fuzz`` runs the same cases by the ten thousand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from fuzzing import exit_histogram, failures, onnx_importer, run_cases, warm_up

from unframe.cli.main import cli

pytest.importorskip("torch", reason="the pytorch extra is not installed (a command writes .pt2)")

CASES = 240
SEED = 20261206


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
def test_mutated_onnx_files_fail_cleanly(tmp_path: Path, external: bool) -> None:
    importer = onnx_importer(external=external)
    # The unmutated model goes through every command (and pays the imports outside the cases).
    assert set(warm_up(importer, tmp_path / "pristine").values()) == {0}
    results = run_cases(importer, SEED, range(CASES), tmp_path)
    assert not failures(results), failures(results)
    codes = exit_histogram(results)
    assert codes.get(2, 0) + codes.get(3, 0) > CASES // 2, codes  # the error paths are reached
    assert not list(tmp_path.iterdir())  # every case cleaned up, nothing left by unframe


def test_external_data_written_to_onnx_inline(tmp_path: Path) -> None:
    """Found by the fuzz: ONNX -> ONNX kept the source's ``weights.bin`` reference, which pointed
    at nothing beside the new file (exit 3, blaming the conversion)."""
    importer = onnx_importer(external=True)
    for name, data in importer.files.items():
        (tmp_path / name).write_bytes(data)
    out = tmp_path / "out" / "copy.onnx"
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "model.onnx"), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.onnx"]
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32)
    want = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(out)).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", [".onnx", ".caffe2"])
def test_a_node_name_that_is_not_utf8(tmp_path: Path, suffix: str) -> None:
    """Found by the fuzz: protobuf keeps such a proto2 string, onnx_ir holds it as bytes, and the
    ONNX writer or the Caffe2 exporter then failed on it (exit 5)."""
    data = onnx_importer().files["model.onnx"]
    assert data.count(b"\x1a\x03mul") == 1  # NodeProto field 3 (name), 3 bytes
    source = tmp_path / "model.onnx"
    source.write_bytes(data.replace(b"\x1a\x03mul", b"\x1a\x03m\x80l"))
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(out)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (
        f"unframe: error: {source}: not a valid ONNX model: the name b'm\\x80l' is not UTF-8 "
        "(the file is corrupt or was written by a faulty exporter)\n"
    )
    assert not out.exists()


def test_an_external_data_location_that_is_not_utf8(tmp_path: Path) -> None:
    """Found by the fuzz: the location came through as bytes and its check failed (exit 5)."""
    importer = onnx_importer(external=True)
    for name, data in importer.files.items():
        (tmp_path / name).write_bytes(data)
    source = tmp_path / "model.onnx"
    data = source.read_bytes()
    assert data.count(b"weights.bin") == 5
    source.write_bytes(data.replace(b"weights.bin", b"wei\xe7hts.bin", 1))
    result = CliRunner().invoke(cli, ["inspect", str(source)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(
        f"unframe: error: {source}: tensor 'w': external data location b'wei\\xe7hts.bin' is not "
        "UTF-8 (external data must be a file in the model's folder)"
    )
