"""atomic_output against hostile and unlucky outputs: directories, links, races, kills, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.output import (
    STAGING_MARK,
    atomic_output,
    check_output,
    sweep_stale_staging,
)

CAFFE2 = Caffe2Framework()

#: A writer in its own process: stages ``name``, says so, waits until the other writer staged too,
#: then publishes, so both have passed the existence check and really race for the name.
RACING_WRITER = """
import sys, time
from pathlib import Path
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.output import atomic_output

target, mine, theirs, kind = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
directory = kind == "directory"
own = Caffe2Framework().is_own_output if directory else None
try:
    with atomic_output(target, force=False, directory=directory, is_own_output=own) as staged:
        (staged / "predict_net.pb" if directory else staged).write_text(mine.name)
        if not directory:
            (staged.parent / (staged.name + ".data")).write_text(mine.name)
        mine.touch()
        deadline = time.monotonic() + 60
        while not theirs.exists():
            if time.monotonic() > deadline:
                sys.exit(9)
            time.sleep(0.001)
except BadInputError as error:
    print(error)
    sys.exit(2)
"""

#: A save that stops forever mid-write, to be killed with SIGKILL.
STALLED_WRITER = """
import sys, time
from pathlib import Path
from unframe.shared_ir.output import atomic_output

with atomic_output(Path(sys.argv[1]), force=False) as staged:
    staged.write_bytes(b"x" * 1_000_000)
    Path(sys.argv[2]).touch()
    time.sleep(600)
"""


def _model_dir(path: Path, marker: str) -> Path:
    path.mkdir()
    (path / "predict_net.pb").write_text(marker)
    (path / "init_net.pb").write_text(marker)
    (path / "value_info.json").write_text("{}")
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


# -- directories ------------------------------------------------------------------------------


def test_force_never_deletes_a_directory_that_is_not_a_model(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for directory, own in ((False, None), (True, None), (True, CAFFE2.is_own_output)):
        with pytest.raises(BadInputError, match="is a directory, not a model") as info:
            with atomic_output(
                folder, force=True, directory=directory, is_own_output=own
            ) as staged:
                (staged / "predict_net.pb" if directory else staged).write_text("new")
        assert str(folder) in str(info.value)
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert _listing(tmp_path) == ["work"]


def test_a_model_directory_with_anything_else_in_it_is_not_replaced(tmp_path):
    model = _model_dir(tmp_path / "net", "old")
    (model / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="is a directory"):
        with atomic_output(model, force=True, directory=True, is_own_output=CAFFE2.is_own_output):
            pass
    assert _listing(model) == ["init_net.pb", "notes.txt", "predict_net.pb", "value_info.json"]


def test_force_replaces_a_model_directory_of_the_format(tmp_path):
    model = _model_dir(tmp_path / "net", "old")
    with atomic_output(
        model, force=True, directory=True, is_own_output=CAFFE2.is_own_output
    ) as staged:
        (staged / "predict_net.pb").write_text("new")
    assert _listing(model) == ["predict_net.pb"]
    assert (model / "predict_net.pb").read_text() == "new"
    assert _listing(tmp_path) == ["net"]


@pytest.mark.parametrize("name", ["..", ".", "/", "~", "cwd", "cwd-parent"])
def test_folders_that_hold_the_user_are_never_outputs(tmp_path, monkeypatch, name):
    work = tmp_path / "home" / "project"
    work.parent.mkdir()
    _model_dir(work, "looks like a model")  # even a folder that passes is_own_output
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = {"~": str(tmp_path / "home"), "cwd": str(work), "cwd-parent": str(work.parent)}
    always = lambda path: True  # noqa: E731 - a format that would claim any directory
    path = Path(target.get(name, name))
    with pytest.raises(BadInputError) as info:
        if name == "/":
            # The real root: only the check runs, so a broken guard fails here and deletes nothing.
            check_output(path, force=True, is_own_output=always)
        else:
            with atomic_output(path, force=True, is_own_output=always):
                pass
    assert info.value.exit_code == 2
    assert (work / "predict_net.pb").read_text() == "looks like a model"


# -- links ------------------------------------------------------------------------------------


def test_force_replaces_a_link_itself_never_its_target(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "out.onnx"
    link.symlink_to(precious)
    with pytest.raises(BadInputError, match="already exists"):
        with atomic_output(link, force=False) as staged:
            staged.write_text("new")
    with atomic_output(link, force=True) as staged:
        staged.write_text("new")
    assert precious.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


def test_a_dangling_link_is_an_existing_output(tmp_path):
    link = tmp_path / "out.onnx"
    link.symlink_to(tmp_path / "elsewhere" / "written-through.onnx")
    with pytest.raises(BadInputError, match="already exists"):
        with atomic_output(link, force=False) as staged:
            staged.write_text("new")
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()
    with atomic_output(link, force=True) as staged:
        staged.write_text("new")
    assert not link.is_symlink() and link.read_text() == "new"
    assert not (tmp_path / "elsewhere").exists()


def test_a_link_to_a_directory_is_replaced_as_a_link(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    link = tmp_path / "net"
    link.symlink_to(folder, target_is_directory=True)
    with atomic_output(link, force=True, directory=True) as staged:
        (staged / "predict_net.pb").write_text("new")
    assert not link.is_symlink() and _listing(link) == ["predict_net.pb"]
    assert _listing(folder) == ["keep.txt"]


def test_side_files_follow_the_same_rules(tmp_path):
    target = tmp_path / "model.onnx"
    sidecar = tmp_path / "model.onnx.data"
    sidecar.write_text("someone's data")
    with pytest.raises(BadInputError, match="already exists") as info:
        with atomic_output(target, force=False) as staged:
            staged.write_text("graph")
            (staged.parent / "model.onnx.data").write_text("weights")
    assert str(sidecar) in str(info.value)
    assert not target.exists() and sidecar.read_text() == "someone's data"
    precious = tmp_path / "precious.bin"
    precious.write_text("keep me")
    sidecar.unlink()
    sidecar.symlink_to(precious)
    with atomic_output(target, force=True) as staged:
        staged.write_text("graph")
        (staged.parent / "model.onnx.data").write_text("weights")
    assert precious.read_text() == "keep me"
    assert not sidecar.is_symlink() and sidecar.read_text() == "weights"
    assert _listing(tmp_path) == ["model.onnx", "model.onnx.data", "precious.bin"]


# -- races ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_two_concurrent_writers_exactly_one_wins(tmp_path, kind):
    target = tmp_path / ("model.onnx" if kind == "file" else "net")
    flags = [tmp_path / "writer-a", tmp_path / "writer-b"]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", RACING_WRITER, str(target), str(mine), str(theirs), kind],
            stdout=subprocess.PIPE,
            text=True,
        )
        for mine, theirs in (flags, flags[::-1])
    ]
    codes = [writer.wait(timeout=120) for writer in writers]
    assert sorted(codes) == [0, 2], codes
    winner = flags[codes.index(0)].name
    loser_says = writers[codes.index(2)].communicate()[0]
    assert "already exists" in loser_says and str(target) in loser_says
    if kind == "file":
        assert target.read_text() == winner
        assert (tmp_path / "model.onnx.data").read_text() == winner
        assert _listing(tmp_path) == ["model.onnx", "model.onnx.data", "writer-a", "writer-b"]
    else:
        assert (target / "predict_net.pb").read_text() == winner
        assert _listing(tmp_path) == ["net", "writer-a", "writer-b"]


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_force_replacement_never_leaves_the_target_missing(tmp_path, kind):
    directory = kind == "directory"
    target = tmp_path / ("model.onnx" if kind == "file" else "net")
    probe = target / "predict_net.pb" if directory else target
    if directory:
        _model_dir(target, "0")
    else:
        target.write_text("0")
    missing: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not os.path.exists(probe):
                missing.append(1)

    reader = threading.Thread(target=watch)
    reader.start()
    try:
        for round_ in range(1, 151):
            with atomic_output(
                target,
                force=True,
                directory=directory,
                is_own_output=CAFFE2.is_own_output if directory else None,
            ) as staged:
                (staged / "predict_net.pb" if directory else staged).write_text(str(round_))
    finally:
        done.set()
        reader.join()
    assert probe.read_text() == "150"
    assert not missing, f"the target was missing {len(missing)} times"
    assert _listing(tmp_path) == [target.name]


# -- crashes and failures ---------------------------------------------------------------------


def test_a_killed_save_leaves_staging_that_the_next_save_sweeps(tmp_path):
    target = tmp_path / "out.onnx"
    ready = tmp_path.parent / f"{tmp_path.name}-ready"
    writer = subprocess.Popen([sys.executable, "-c", STALLED_WRITER, str(target), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    ready.unlink()
    (stale,) = tmp_path.iterdir()
    assert stale.name.startswith(f".out.onnx{STAGING_MARK}{writer.pid}-")
    assert not target.exists()
    # A live process's staging folder (here: a sleeping child's) is never touched.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        live = tmp_path / f".other.onnx{STAGING_MARK}{sleeper.pid}-00ff00ff"
        live.mkdir()
        with atomic_output(tmp_path / "next.onnx", force=False) as staged:
            staged.write_text("next")
        assert _listing(tmp_path) == [live.name, "next.onnx"]
        assert sweep_stale_staging(tmp_path) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sweep_stale_staging(tmp_path) == [live]


def test_a_failed_save_removes_the_folders_it_created(tmp_path):
    (tmp_path / "existing").mkdir()
    target = tmp_path / "existing" / "new" / "deeper" / "out.onnx"
    with pytest.raises(RuntimeError, match="backend failed"):
        with atomic_output(target, force=False) as staged:
            staged.write_text("half")
            raise RuntimeError("backend failed midway")
    assert _listing(tmp_path) == ["existing"] and _listing(tmp_path / "existing") == []
    with atomic_output(target, force=False) as staged:
        staged.write_text("whole")
    assert target.read_text() == "whole" and _listing(target.parent) == ["out.onnx"]


def test_without_renameat2_links_and_placeholders_keep_the_same_rules(tmp_path, monkeypatch):
    # Kernels, libcs and filesystems without renameat2 (macOS, musl, some network filesystems).
    monkeypatch.setattr("unframe.shared_ir.output._RENAMEAT2", None)
    link = tmp_path / "out.onnx"
    link.symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(BadInputError, match="already exists"):
        with atomic_output(link, force=False) as staged:
            staged.write_text("new")
    net = tmp_path / "net"
    with atomic_output(net, force=False, directory=True) as staged:
        (staged / "predict_net.pb").write_text("first")
    with pytest.raises(BadInputError, match="already exists"):
        with atomic_output(net, force=False, directory=True) as staged:
            (staged / "predict_net.pb").write_text("second")
    with atomic_output(
        net, force=True, directory=True, is_own_output=CAFFE2.is_own_output
    ) as staged:
        (staged / "predict_net.pb").write_text("third")
    assert (net / "predict_net.pb").read_text() == "third"
    assert _listing(tmp_path) == ["net", "out.onnx"] and link.is_symlink()
