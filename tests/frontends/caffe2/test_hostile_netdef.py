"""Seeded mutations of NetDef pairs and of a pbtxt: one clear error, never a crash or a partial file.

Each case flips, truncates or inserts bytes in a valid model that unframe wrote (100 cases per file), then runs the CLI
in-process. A mutation may leave a valid model (a flipped bit in a weight): that converts (exit
0); anything else must exit 2 or 3 with exactly one ``unframe: error:`` line, no traceback, and
nothing at the output path. Exit 5 (an internal error) fails the test: it is a bug to fix.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from netdef_builders import model, op, randn

from unframe.backends.caffe2.native.netdef import write_model
from unframe.cli.main import cli

CASES = 100
SECONDS_PER_CASE = 5.0


def _valid_model() -> object:
    ops = [
        op("Conv", ["x", "w", "b"], ["c"], kernel=3, pad=1, order="NCHW"),
        op("Relu", ["c"], ["c"]),
        op("MaxPool", ["c"], ["p"], kernel=2, stride=2),
        op("FC", ["p", "fw", "fb"], ["y"]),
        op("Softmax", ["y"], ["prob"]),
    ]
    weights = {
        "w": randn(4, 3, 3, 3, seed=1),
        "b": randn(4, seed=2),
        "fw": randn(5, 4 * 3 * 3, seed=3),
        "fb": randn(5, seed=4),
    }
    return model(ops, weights, {"x": [1, 3, 6, 6]}, ["prob"])


def _mutate(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    kind = rng.choice(["flip", "truncate", "insert"])
    position = rng.randrange(len(data))
    if kind == "flip":
        count = rng.randint(1, 4)
        mutated = bytearray(data)
        for _ in range(count):
            mutated[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(mutated)
    if kind == "truncate":
        return data[:position]
    inserted = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return data[:position] + inserted + data[position:]


def _check(args: list[str], out: Path, case: str) -> int:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    elapsed = time.perf_counter() - start
    text = result.output
    assert elapsed < SECONDS_PER_CASE, f"{case}: took {elapsed:.1f} s"
    assert "Traceback" not in text, f"{case}:\n{text}"
    assert result.exit_code in (0, 2, 3), f"{case}: exit {result.exit_code}\n{text}"
    if result.exit_code:
        errors = [line for line in text.splitlines() if line.startswith("unframe: error:")]
        assert len(errors) == 1, f"{case}:\n{text}"
        assert not out.exists(), f"{case}: {out} written"
    return int(result.exit_code)


@pytest.mark.parametrize("target", ["predict_net.pb", "init_net.pb"])
def test_mutated_netdef_pairs(tmp_path: Path, target: str) -> None:
    original = tmp_path / "original"
    write_model(_valid_model(), original)  # type: ignore[arg-type]
    pristine = {p.name: p.read_bytes() for p in original.iterdir()}
    rng = random.Random(f"netdef-{target}")
    codes = []
    for case in range(CASES):
        directory = tmp_path / f"case{case}"
        directory.mkdir()
        for name, data in pristine.items():
            (directory / name).write_bytes(_mutate(data, rng) if name == target else data)
        out = tmp_path / f"case{case}.onnx"
        codes.append(_check(["convert", str(directory), "-o", str(out)], out, f"{target} #{case}"))
    assert codes.count(0) < len(codes)  # the mutations do reach the error paths


def test_mutated_pbtxt(tmp_path: Path) -> None:
    c2 = _valid_model()
    text = text_format.MessageToString(c2.predict_net).encode()  # type: ignore[attr-defined]
    rng = random.Random("pbtxt")
    codes = []
    for case in range(CASES):
        directory = tmp_path / f"case{case}"
        directory.mkdir()
        (directory / "predict_net.pbtxt").write_bytes(_mutate(text, rng))
        (directory / "value_info.json").write_text('{"x": [1, [1, 3, 6, 6]]}', encoding="utf-8")
        out = tmp_path / f"case{case}.onnx"
        # Without weights it inspects (exit 0) or fails cleanly; converting always refuses.
        _check(["inspect", str(directory)], out, f"pbtxt inspect #{case}")
        codes.append(_check(["convert", str(directory), "-o", str(out)], out, f"pbtxt #{case}"))
    assert 0 not in codes


def test_the_unmutated_model_converts(tmp_path: Path) -> None:
    write_model(_valid_model(), tmp_path / "model")  # type: ignore[arg-type]
    out = tmp_path / "model.onnx"
    assert _check(["convert", str(tmp_path / "model"), "-o", str(out)], out, "pristine") == 0
    assert out.is_file() and out.stat().st_size > 0


def test_a_net_name_that_is_not_utf8(tmp_path: Path) -> None:
    # Found by the mutations: the weights' wire reader keeps such a name as bytes, which then
    # failed inside the ONNX writer as an internal error.
    write_model(_valid_model(), tmp_path / "model")  # type: ignore[arg-type]
    predict = tmp_path / "model" / "predict_net.pb"
    data = predict.read_bytes()
    assert data.count(b"\n\x04test") == 1  # field 1 (name), 4 bytes
    predict.write_bytes(data.replace(b"\n\x04test", b"\n\x04tes\xf4"))
    out = tmp_path / "model.onnx"
    assert _check(["convert", str(tmp_path / "model"), "-o", str(out)], out, "name") == 2
