"""``--executor ray``: the same jobs end the same way as in the local pool, on a local Ray instance.

The oracles: onnxruntime runs each written ONNX output against numpy's Relu; the expected exit
codes are the documented ones (2 bad input, 3 unsupported, 5 a dead worker, 6 past the timeout);
the local process pool runs the same jobs and must agree job by job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import ray
from onnx import TensorProto, helper

from unframe.converters.batch.jobs import Job, JobResult
from unframe.converters.batch.local import LocalExecutor
from unframe.converters.batch.ray_executor import RayExecutor

TIMEOUT_S = 30.0  # generous: a first job in a fresh worker imports the frameworks, on a busy CI
CRASH, HANG = "crash-me", "hang-me"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module, as a user who called ``ray.init`` would have."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _unary_model(path: Path, op: str, elem_type: int = TensorProto.FLOAT) -> Path:
    x = helper.make_tensor_value_info("x", elem_type, [2, 3])
    y = helper.make_tensor_value_info("y", elem_type, [2, 3])
    inputs = ["x", "x"] if op == "Add" else ["x"]
    graph = helper.make_graph([helper.make_node(op, inputs, ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _jobs(sources: Path, outputs: Path) -> list[Job]:
    relu = _unary_model(sources / "relu.onnx", "Relu")
    # Caffe2 has no unsigned 32-bit tensors: refused before anything is written (exit 3).
    uint_add = _unary_model(sources / "uint_add.onnx", "Add", TensorProto.UINT32)
    crash = _unary_model(sources / f"{CRASH}.onnx", "Relu")
    hang = _unary_model(sources / f"{HANG}.onnx", "Relu")
    corrupt = sources / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 not a model")
    return [
        Job(str(relu), "onnx", str(outputs / "relu.onnx")),
        Job(str(crash), "onnx", str(outputs / "crashed.onnx")),
        Job(str(relu), "caffe2", str(outputs / "relu_caffe2"), validate=True),
        Job(str(uint_add), "caffe2", str(outputs / "uint_add_caffe2")),
        Job(str(corrupt), "onnx", str(outputs / "corrupt.onnx")),
        Job(str(hang), "onnx", str(outputs / "hung.onnx")),
        Job(str(sources / "missing.onnx"), "onnx", str(outputs / "missing.onnx")),
        Job(str(relu), "onnx", str(outputs / "relu_again.onnx"), opset=18),
    ]


#: (ok, exit code) of each job above, as documented.
EXPECTED = [(True, 0), (False, 5), (True, 0), (False, 3), (False, 2), (False, 6), (False, 2),
            (True, 0)]  # fmt: skip


def _check_onnx_output(path: str) -> None:
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    (y,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def _run(executor, jobs: list[Job]) -> tuple[list[JobResult], list[tuple[str, str]]]:
    events: list[tuple[str, str]] = []
    results = executor.run(
        jobs, workers=2, timeout=TIMEOUT_S, on_progress=lambda e, j, r: events.append((e, j.out))
    )
    return results, events


def test_ray_ends_every_job_as_documented_and_as_the_local_pool(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("UNFRAME_BATCH_TEST_CRASH", CRASH)
    monkeypatch.setenv("UNFRAME_BATCH_TEST_HANG", HANG)
    sources = tmp_path / "src"
    sources.mkdir()
    on_ray, on_local = tmp_path / "ray", tmp_path / "local"
    ray_jobs, local_jobs = _jobs(sources, on_ray), _jobs(sources, on_local)

    ray_results, events = _run(RayExecutor(), ray_jobs)
    local_results, _ = _run(LocalExecutor(), local_jobs)

    assert [r.job for r in ray_results] == ray_jobs  # in the order of the jobs
    ended = [(r.ok, r.exit_code) for r in ray_results]
    assert ended == EXPECTED, [r.error for r in ray_results]
    assert ended == [(r.ok, r.exit_code) for r in local_results]
    for result in ray_results:
        assert (result.error is None) == result.ok
        assert result.error is None or result.error.startswith(result.job.src)
    assert f"timed out after {TIMEOUT_S:g} s" in (ray_results[5].error or "")
    assert ray_results[2].validation is not None and ray_results[2].validation["ok"]
    # Workers are reused (so frameworks are imported once each): the last job found its worker
    # warm from an earlier one, even after a crash and a timeout each took a worker down.
    assert ray_results[7].details["worker"]["jobs_before"] >= 1
    # Each job started once and ended once; the crash and the hang did not stop the rest.
    assert sorted(events) == sorted([("start", j.out) for j in ray_jobs] +
                                    [("done", j.out) for j in ray_jobs])  # fmt: skip
    # Written: the good jobs' outputs only, nothing partial beside them.
    assert sorted(p.name for p in on_ray.iterdir()) == ["relu.onnx", "relu_again.onnx",
                                                        "relu_caffe2"]  # fmt: skip
    _check_onnx_output(str(on_ray / "relu.onnx"))
    _check_onnx_output(str(on_ray / "relu_again.onnx"))
    assert onnx.load(on_ray / "relu_again.onnx").opset_import[0].version == 18


def test_joining_a_running_instance_by_address_prints_nothing_of_ray(local_ray, tmp_path):
    """A second driver joins by address; a worker crash there leaves its stdout clean."""
    relu = _unary_model(tmp_path / "relu.onnx", "Relu")
    crash = _unary_model(tmp_path / f"{CRASH}.onnx", "Relu")
    script = (
        "import json, sys\n"
        "from unframe.converters.batch.jobs import Job\n"
        "from unframe.converters.batch.ray_executor import RayExecutor\n"
        f"jobs = [Job({str(crash)!r}, 'onnx', {str(tmp_path / 'c.onnx')!r}),"
        f" Job({str(relu)!r}, 'onnx', {str(tmp_path / 'r.onnx')!r})]\n"
        "results = RayExecutor(address=sys.argv[1]).run(jobs, workers=1, timeout=60)\n"
        "print(json.dumps([r.as_json() for r in results]))\n"
    )
    env = {**os.environ, "UNFRAME_BATCH_TEST_CRASH": CRASH, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script, local_ray],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no Ray log line on the terminal either
    crashed, converted = json.loads(done.stdout)  # stdout is that one JSON line, nothing more
    assert (crashed["ok"], crashed["exit_code"]) == (False, 5)
    assert (converted["ok"], converted["exit_code"]) == (True, 0)
    _check_onnx_output(str(tmp_path / "r.onnx"))
    assert not (tmp_path / "c.onnx").exists()


def test_an_address_where_no_cluster_listens_is_one_error_line_at_once(tmp_path):
    """Ray itself would retry for minutes, logging, then exit; the user gets exit 2 and why."""
    relu = _unary_model(tmp_path / "relu.onnx", "Relu")
    manifest = tmp_path / "batch.json"
    manifest.write_text(json.dumps({"jobs": [{"src": str(relu), "to": "onnx", "out": "o.onnx"}]}))
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unframe = Path(sys.executable).with_name("unframe")
    done = subprocess.run(
        [
            str(unframe),
            "batch",
            str(manifest),
            "--executor",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "--json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in lines[0]
    assert not (tmp_path / "o.onnx").exists()
