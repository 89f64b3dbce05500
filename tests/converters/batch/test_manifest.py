"""Manifests: defaults, target lists, globs, ``out`` templates, CSV, and one clear error each.

Expected jobs are written out by hand from the manifest's text.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unframe.converters.batch.jobs import Job
from unframe.converters.batch.manifest import ManifestError, load_manifest
from unframe.shared_ir.errors import ExitCode


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("b.onnx", "a.onnx", "notes.txt"):
        (folder / name).write_bytes(b"not read when a manifest is parsed")
    return folder


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_target_lists_globs_and_templates(tmp_path, models):
    manifest = write(
        tmp_path,
        "batch.yaml",
        """
defaults: {to: [caffe2, pytorch], out: "converted/{parent}/{stem}.{ext}", validate: true}
jobs:
  - src: "models/*.onnx"
  - {src: models/a.onnx, from: ONNX, to: onnx, out: "/abs/{name}.{to}", opset: 17,
     inputs: "x=1,3", rtol: 1e-3, atol: 0, validate: false}
""",
    )
    jobs = load_manifest(manifest)
    out = tmp_path / "converted" / "models"
    a, b = str(models / "a.onnx"), str(models / "b.onnx")
    assert jobs == [
        Job(src=a, to="caffe2", out=str(out / "a.caffe2"), validate=True),
        Job(src=a, to="pytorch", out=str(out / "a.pt2"), validate=True),
        Job(src=b, to="caffe2", out=str(out / "b.caffe2"), validate=True),
        Job(src=b, to="pytorch", out=str(out / "b.pt2"), validate=True),
        Job(
            src=a,
            to="onnx",
            out="/abs/a.onnx.onnx",
            source="onnx",
            opset=17,
            inputs=("x=1,3",),
            rtol=1e-3,
            atol=0.0,
        ),
    ]


def test_json_list_and_csv_with_the_same_columns(tmp_path, models):
    as_json = write(
        tmp_path,
        "batch.json",
        '[{"src": "models/a.onnx", "to": "caffe2", "out": "a.caffe2", "force": "yes"}]',
    )
    assert load_manifest(as_json) == [
        Job(src=str(models / "a.onnx"), to="caffe2", out=str(tmp_path / "a.caffe2"), force=True)
    ]
    as_csv = write(
        tmp_path,
        "batch.csv",
        "src,to,out,inputs,validate,opset\n"
        'models/b.onnx,caffe2;onnx,out/{stem}.{ext},"x=2,3;y=4",true,\n'
        "\n"
        "models/a.onnx,pytorch,a.pt2,,no,18\n",
    )
    b = str(models / "b.onnx")
    assert load_manifest(as_csv) == [
        Job(b, "caffe2", str(tmp_path / "out/b.caffe2"), inputs=("x=2,3", "y=4"), validate=True),
        Job(b, "onnx", str(tmp_path / "out/b.onnx"), inputs=("x=2,3", "y=4"), validate=True),
        Job(str(models / "a.onnx"), "pytorch", str(tmp_path / "a.pt2"), opset=18),
    ]


def test_a_missing_source_is_a_job_not_a_manifest_error(tmp_path):
    manifest = write(tmp_path, "m.yaml", "jobs: [{src: gone.onnx, to: caffe2, out: g.caffe2}]")
    assert load_manifest(manifest)[0].src == str(tmp_path / "gone.onnx")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "jobs: [{src: a.onnx, to: caffe2, out: a.c2, speed: fast}]",
            "job 0: unknown key(s) speed",
        ),
        (
            "jobs: [{src: models/a.onnx, to: caffe2, out: x}, {src: 'models/*.zip', to: onnx, out: y}]",
            "job 1: 'src' glob 'models/*.zip' matches no file",
        ),
        (
            "jobs: [{src: models/a.onnx, to: caffe2, out: same}, {src: models/b.onnx, to: caffe2, out: same}]",
            "job 1: writes",
        ),
        ("jobs: [{src: 'models/*.onnx', to: caffe2, out: one.c2}]", "matches 2 files but 'out'"),
        ("defaults: {to: caffe2}\njobs: [{src: a.onnx}]", "job 0: has no 'out'"),
        ("jobs: [{src: a.onnx, to: caffe3, out: a}]", "job 0: 'to': unknown framework 'caffe3'"),
        ("jobs: [{src: a.onnx, to: onnx, out: '{stm}.onnx'}]", "job 0: 'out' template"),
        ("jobs: [{src: a.onnx, to: onnx, out: a, opset: seventeen}]", "'opset' must be an integer"),
        (
            "jobs: [{src: a.onnx, to: onnx, out: a, inputs: 'x=1,3:nosuch'}]",
            "job 0: 'inputs': --input 'x=1,3:nosuch': unknown dtype",
        ),
        (
            "jobs: [{src: a.onnx, to: onnx, out: a}]\nworkers: 3",
            "unknown top-level key(s): workers",
        ),
        ("jobs: [{src: a.onnx, to: onnx, out: a", "not valid YAML"),
        ("jobs: []", "'jobs' must be a non-empty list"),
        ("- !!python/object/apply:os.system ['echo owned']", "not valid YAML"),
    ],
)
def test_a_bad_manifest_is_one_error_naming_it_and_the_job(tmp_path, models, text, message):
    manifest = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{manifest}: ")
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_the_cli_refuses_a_bad_manifest_with_exit_2_and_one_line(tmp_path):
    manifest = write(tmp_path, "bad.yaml", "jobs: [{src: a.onnx, to: caffe2, out: a.c2, x: 1}]")
    done = subprocess.run(
        [sys.executable, "-m", "unframe", "batch", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"unframe: error: {manifest}: job 0: unknown key(s) x (a job's keys are src, from, to, "
        "out, opset, inputs, validate, rtol, atol, force)"
    ]
