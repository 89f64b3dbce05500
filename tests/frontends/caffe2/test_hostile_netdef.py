"""Seeded mutations of NetDef pairs and of a pbtxt: one clear error, never a crash or a partial file.

The fuzz cases come from the shared harness (``tests/fuzzing.py``): each mutates a valid NetDef pair
that unframe wrote (or its predict net as text) with byte, protobuf-field or text edits, then runs
the CLI in-process. A mutation may leave a valid model (a flipped bit in a weight): that converts
(exit 0) where Google's protobuf parser still reads the files; anything else must exit 2 or 3 with
exactly one ``unframe: error:`` line naming the input, no traceback, and nothing at the output
path. Exit 5 (an internal error) fails the test: it is a bug to fix.
"""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner
from fuzzing import exit_histogram, failures, netdef_importer, pbtxt_importer, run_cases, warm_up
from netdef_builders import model, op, randn

from unframe.backends.caffe2.native.netdef import write_model
from unframe.cli.main import cli

CASES = 240
SEED = 20261206
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


def test_mutated_netdef_pairs(tmp_path: Path) -> None:
    importer = netdef_importer()
    assert set(warm_up(importer, tmp_path / "pristine").values()) == {0}
    results = run_cases(importer, SEED, range(CASES), tmp_path)
    assert not failures(results), failures(results)
    mutated = {r.mutation.split(":")[0] for r in results}
    assert mutated == {"model/predict_net.pb", "model/init_net.pb"}
    assert exit_histogram(results).get(0, 0) < CASES // 2  # the mutations reach the error paths
    assert not list(tmp_path.iterdir())


def test_mutated_pbtxt(tmp_path: Path) -> None:
    importer = pbtxt_importer()
    results = run_cases(importer, SEED, range(CASES), tmp_path)
    assert not failures(results), failures(results)
    # Without weights it inspects (exit 0) or fails cleanly; converting always refuses.
    assert [r.describe() for r in results if r.args[0] == "convert" and r.exit_code == 0] == []
    assert exit_histogram(results).get(2, 0) > CASES // 4
    assert not list(tmp_path.iterdir())


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
