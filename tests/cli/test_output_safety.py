"""The CLI's outputs against a careless user and an attacker: --force, links, races, kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from unframe.cli.main import cli
from unframe.shared_ir.output import STAGING_MARK

from helpers import tiny_model

UNFRAME = Path(sys.executable).with_name("unframe")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_refused(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "Traceback" not in result.output and len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, message
    return message


def _listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


@pytest.fixture
def source(write_model) -> Path:
    return write_model(tiny_model(("Relu", "Sigmoid")))


def test_force_onto_a_directory_keeps_it_and_everything_in_it(tmp_path, source):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for target in ("onnx", "caffe2"):
        result = invoke("convert", str(source), "--to", target, "-o", str(folder), "--force")
        assert_refused(result, str(folder), "is a directory, not a model")
    assert _listing(folder) == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_force_onto_the_working_directorys_parent_is_refused(tmp_path, source, monkeypatch):
    work = tmp_path / "project"
    work.mkdir()
    (work / "code.py").write_text("print()")
    monkeypatch.chdir(work)
    for output in ("..", ".", str(tmp_path)):
        assert_refused(invoke("convert", str(source), "-o", output, "--force"))
    assert (work / "code.py").read_text() == "print()"
    assert source.exists()


def test_force_replaces_a_caffe2_model_directory_but_not_one_with_more_in_it(tmp_path, source):
    net = tmp_path / "net.caffe2"
    assert invoke("convert", str(source), "-o", str(net)).exit_code == 0
    written = _listing(net)
    predict_net = (net / "predict_net.pb").read_bytes()
    (net / "predict_net.pb").write_bytes(b"stale")
    result = invoke("convert", str(source), "-o", str(net), "--force")
    assert result.exit_code == 0, result.output
    assert _listing(net) == written and (net / "predict_net.pb").read_bytes() == predict_net
    (net / "README").write_text("my notes")
    assert_refused(invoke("convert", str(source), "-o", str(net), "--force"), str(net))
    assert (net / "README").read_text() == "my notes"
    assert _listing(tmp_path) == ["model.onnx", "net.caffe2"]


def test_force_onto_a_link_replaces_the_link_never_its_target(tmp_path, source):
    precious = tmp_path / "precious.onnx"
    precious.write_text("keep me")
    link = tmp_path / "out.onnx"
    link.symlink_to(precious)
    assert_refused(invoke("convert", str(source), "-o", str(link)), "already exists", "--force")
    assert invoke("convert", str(source), "-o", str(link), "--force").exit_code == 0
    assert precious.read_text() == "keep me"
    assert not link.is_symlink()
    assert [node.op_type for node in onnx.load(link).graph.node] == ["Relu", "Sigmoid"]


def test_a_dangling_link_is_never_written_through(tmp_path, source):
    link = tmp_path / "out.onnx"
    elsewhere = tmp_path / "elsewhere.onnx"
    link.symlink_to(elsewhere)
    assert_refused(invoke("convert", str(source), "-o", str(link)), "already exists", str(link))
    assert link.is_symlink() and not elsewhere.exists()
    assert invoke("convert", str(source), "-o", str(link), "--force").exit_code == 0
    assert not elsewhere.exists() and not link.is_symlink()
    onnx.checker.check_model(onnx.load(link))


def test_run_outputs_follow_the_same_rules(tmp_path, source):
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "keep.npz").write_bytes(b"mine")
    assert_refused(invoke("run", str(source), "-o", str(folder), "--force"), str(folder))
    assert _listing(folder) == ["keep.npz"]
    out = tmp_path / "out.npz"
    assert invoke("run", str(source), "-o", str(out)).exit_code == 0
    assert_refused(invoke("run", str(source), "-o", str(out)), "already exists")
    assert invoke("run", str(source), "-o", str(out), "--force").exit_code == 0
    assert list(np.load(out)) == ["y"]


def test_concurrent_converts_to_one_output_exactly_one_wins(tmp_path, source):
    out = tmp_path / "out.onnx"
    runs = [
        subprocess.Popen(
            [str(UNFRAME), "convert", str(source), "-o", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    codes = [run.wait(timeout=300) for run in runs]
    assert sorted(codes) == [0, 2, 2], codes
    for run, code in zip(runs, codes, strict=True):
        if code == 2:
            assert "already exists" in run.communicate()[1]
    onnx.checker.check_model(onnx.load(out))
    assert _listing(tmp_path) == ["model.onnx", "out.onnx"]


def test_the_next_convert_sweeps_what_a_killed_save_left(tmp_path, source):
    ready = tmp_path / "ready"
    stalled = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from unframe.shared_ir.output import atomic_output\n"
        "with atomic_output(Path(sys.argv[1]), force=False) as staged:\n"
        "    staged.write_bytes(bytes(1_000_000))\n"
        "    Path(sys.argv[2]).touch()\n"
        "    time.sleep(600)\n"
    )
    out = tmp_path / "out" / "big.onnx"
    writer = subprocess.Popen([sys.executable, "-c", stalled, str(out), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    (leftover,) = (tmp_path / "out").iterdir()
    assert leftover.name.startswith(f".big.onnx{STAGING_MARK}{writer.pid}-")
    result = invoke("convert", str(source), "-o", str(tmp_path / "out" / "small.onnx"))
    assert result.exit_code == 0, result.output
    assert _listing(tmp_path / "out") == ["small.onnx"]


def test_a_failed_convert_removes_the_folders_it_created(tmp_path, source):
    out = tmp_path / "new" / "deeper" / "out.onnx"
    result = invoke("convert", str(source), "-o", str(out), "--opset", "3")
    assert result.exit_code == 3, result.output
    assert _listing(tmp_path) == ["model.onnx"]
