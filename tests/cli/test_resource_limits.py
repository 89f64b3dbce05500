"""Out of memory or disk is the machine's limit (exit 6), said once, with nothing partial left.

The limits are real ones, set with ``setrlimit`` in a subprocess: ``RLIMIT_FSIZE`` (``ulimit
-f``; CPython ignores SIGXFSZ, so the write fails with EFBIG) and ``RLIMIT_AS`` (``ulimit -v``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="setrlimit as Linux applies it")

WEIGHT_BYTES = 16 << 20

_UNDER_LIMIT = """
import resource, sys
from unframe.converters import api
from unframe.cli.main import main
kind, small, small_out, limit_bytes = sys.argv[1:5]
# Every import made and the runtime started, so the limit measures what the conversion adds.
api.convert(small, small_out, force=True)
if kind == "address":
    with open("/proc/self/status") as status:
        peak = dict(line.split(":", 1) for line in status)["VmPeak"]
    limit = int(peak.split()[0]) * 1024 + int(limit_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
else:
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit_bytes), int(limit_bytes)))
sys.argv = ["unframe", *sys.argv[5:]]
main()
"""


def _model(path: Path, weight_bytes: int) -> None:
    side = int(np.sqrt(weight_bytes // 4))
    weight = np.random.default_rng(0).standard_normal((side, side)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, side])],
        [numpy_helper.from_array(weight, "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _run_limited(tmp_path: Path, kind: str, limit_bytes: int, argv: list[str]):
    small = tmp_path / "small.onnx"
    _model(small, 4096)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            _UNDER_LIMIT,
            kind,
            str(small),
            str(tmp_path / "warm" / "small.onnx"),
        ]
        + [str(limit_bytes), *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(("target", "name"), [("onnx", "out.onnx"), ("caffe2", "out_net")])
def test_a_file_size_limit_exits_6_and_leaves_nothing(
    tmp_path: Path, target: str, name: str
) -> None:
    source = tmp_path / "model.onnx"
    _model(source, WEIGHT_BYTES)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "warm").mkdir()
    out = out_dir / name
    done = _run_limited(
        tmp_path,
        "file",
        WEIGHT_BYTES // 4,
        ["convert", str(source), "-o", str(out), "--to", target],
    )
    assert done.returncode == 6, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("unframe: error: "), done.stderr
    assert "file-size limit" in lines[0] and "16.0 MiB" in lines[0], lines[0]
    assert list(out_dir.iterdir()) == []  # nothing partial, no temporary left


def test_an_address_space_limit_exits_6_saying_how_much(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    _model(source, WEIGHT_BYTES)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "warm").mkdir()
    out = out_dir / "out.onnx"
    # ONNX -> ONNX with the weights inline serializes the model in memory: over a quarter of them.
    done = _run_limited(
        tmp_path, "address", WEIGHT_BYTES // 4, ["convert", str(source), "-o", str(out), "--force"]
    )
    assert done.returncode == 6, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("unframe: error: "), done.stderr
    assert "ran out of memory" in lines[0] and "ulimit -v" in lines[0], lines[0]
    assert list(out_dir.iterdir()) == []
