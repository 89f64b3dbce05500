"""Every bad input gives one clear error (file, step, reason), exit code 2 or 3, and writes nothing.

Malicious pickles here would create a sentinel file when unpickled; the tests check it never
appears, which proves no ``weights_only=False`` unpickling happened.
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unframe.converters.framework import ConvertOptions  # noqa: E402
from unframe.frontends.pytorch import ExporterFallbackWarning, load_pytorch  # noqa: E402
from unframe.shared_ir.errors import (  # noqa: E402
    BadInputError,
    ExitCode,
    UnframeError,
    UnsupportedError,
)
from unframe.shared_ir.inputs import InputSpec  # noqa: E402


class Evil:
    """Unpickling this creates ``sentinel``: proof that arbitrary code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.sentinel), "w"))


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def _one_line(error: UnframeError, *fragments: str) -> str:
    text = str(error)
    assert "\n" not in text and "\x1b[" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def _load_fails(
    target: Path | str,
    options: ConvertOptions | None = None,
    kind: type[UnframeError] = BadInputError,
) -> UnframeError:
    with pytest.raises(kind) as info:
        load_pytorch(target, options or ConvertOptions())
    return info.value


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that must end as it started: nothing written by a failed load."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _assert_nothing_written(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before


def _saved_program(folder: Path) -> Path:
    path = folder / "small.pt2"
    program = torch.export.export(Small().eval(), (torch.randn(2, 3),))
    torch.export.save(program, path)
    return path


def _rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = old.read(info.filename)
            for suffix, payload in replace.items():
                if info.filename.endswith(suffix):
                    data = payload
            new.writestr(info, data)


# -- missing and unknown files ---------------------------------------------------------------


def test_missing_file(workdir: Path) -> None:
    error = _load_fails(workdir / "absent.pt2")
    assert error.exit_code == ExitCode.BAD_INPUT
    _one_line(error, "absent.pt2", "no such file")


def test_directory_and_unknown_suffix(workdir: Path) -> None:
    _one_line(_load_fails(workdir), "directory")
    (workdir / "model.bin").write_bytes(b"\0" * 16)
    _one_line(_load_fails(workdir / "model.bin"), "model.bin", "not a PyTorch model file")


# -- .pt2 ---------------------------------------------------------------------------------------


def test_pt2_that_is_not_a_zip(workdir: Path) -> None:
    path = workdir / "junk.pt2"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    before = {p.name for p in workdir.iterdir()}
    error = _load_fails(path)
    _one_line(error, "junk.pt2", "loading the .pt2 program failed", "not a torch.export archive")
    _assert_nothing_written(workdir, before)


def test_truncated_pt2(workdir: Path) -> None:
    good = _saved_program(workdir)
    data = good.read_bytes()
    path = workdir / "truncated.pt2"
    path.write_bytes(data[: len(data) // 2])
    _one_line(_load_fails(path), "truncated.pt2", "loading the .pt2 program failed")


def test_pt2_with_a_corrupt_program(workdir: Path) -> None:
    path = workdir / "corrupt.pt2"
    _rewrite_zip(_saved_program(workdir), path, {"models/model.json": b"{not json"})
    _one_line(_load_fails(path), "corrupt.pt2", "loading the .pt2 program failed")


def test_pt2_rewritten_unchanged_still_loads(workdir: Path) -> None:
    """The zip rewriting of the next tests is sound: an unchanged copy converts."""
    path = workdir / "copy.pt2"
    _rewrite_zip(_saved_program(workdir), path, {})
    assert load_pytorch(path, ConvertOptions()).graph.inputs[0].name == "x"


def test_pt2_with_pickled_sample_inputs_is_refused_without_unpickling(workdir: Path) -> None:
    sentinel = workdir / "PWNED"
    buffer = io.BytesIO()
    torch.save(((Evil(sentinel),), {}), buffer)
    path = workdir / "evil.pt2"
    _rewrite_zip(_saved_program(workdir), path, {"sample_inputs/model.pt": buffer.getvalue()})
    error = _load_fails(path)
    _one_line(error, "evil.pt2", "refuses")
    assert not sentinel.exists()


def test_pt2_declaring_pickled_weights_is_refused_before_loading(workdir: Path) -> None:
    source = _saved_program(workdir)
    with zipfile.ZipFile(source) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = archive.read(name).replace(b'"use_pickle": false', b'"use_pickle": true')
    path = workdir / "pickled.pt2"
    _rewrite_zip(source, path, {"model_weights_config.json": config})
    _one_line(_load_fails(path), "pickled.pt2", "pickled objects", "refuses")


def test_pt2_rejects_unknown_inputs_and_dynamic_options(workdir: Path) -> None:
    path = _saved_program(workdir)
    inputs = ConvertOptions(inputs={"image": InputSpec("image", (2, 3))})
    _one_line(_load_fails(path, inputs), "--input names image", "its inputs: x")
    dynamic = ConvertOptions(dynamic={"x": (0,)})
    _one_line(_load_fails(path, dynamic), "--dynamic does not apply")


# -- TorchScript ------------------------------------------------------------------------------


def test_corrupt_torchscript(workdir: Path) -> None:
    path = workdir / "junk.pt"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(2048))
    error = _load_fails(path, ConvertOptions(inputs={"x": InputSpec("x", (1, 3))}))
    _one_line(error, "junk.pt", "loading the TorchScript model failed")


def test_pickled_module_is_never_unpickled(workdir: Path) -> None:
    """``torch.save(model)`` output (a pickle) is refused, and its payload never runs."""
    sentinel = workdir / "PWNED"
    path = workdir / "pickled.pt"
    torch.save({"model": Small(), "trap": Evil(sentinel)}, path)
    error = _load_fails(path, ConvertOptions(inputs={"x": InputSpec("x", (1, 3))}))
    _one_line(error, "pickled.pt", "torch.save pickle", "never unpickles")
    assert not sentinel.exists()


def test_legacy_pickle_file_is_never_unpickled(workdir: Path) -> None:
    sentinel = workdir / "PWNED"
    path = workdir / "legacy.pth"
    torch.save({"trap": Evil(sentinel)}, path, _use_new_zipfile_serialization=False)
    error = _load_fails(path, ConvertOptions(inputs={"x": InputSpec("x", (1, 3))}))
    _one_line(error, "legacy.pth", "torch.save pickle", "never unpickles")
    assert not sentinel.exists()


def test_torchscript_without_inputs_asks_for_them(workdir: Path) -> None:
    path = workdir / "small.pt"
    torch.jit.save(torch.jit.script(Small()), str(path))
    _one_line(_load_fails(path), "small.pt", "needs example inputs", "--input", "x")


# -- factories --------------------------------------------------------------------------------

GOOD = textwrap.dedent(
    """
    import torch

    def make_model():
        return torch.nn.Linear(3, 2)
    """
)


def _factory(folder: Path, body: str, name: str = "factory.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def test_factory_that_raises(workdir: Path) -> None:
    path = _factory(workdir, "def make_model():\n    raise ValueError('no weights here')\n")
    before = {p.name for p in workdir.iterdir()}
    error = _load_fails(f"{path}:make_model")
    assert error.exit_code == ExitCode.BAD_INPUT
    _one_line(
        error, str(path), "calling the factory make_model() failed", "ValueError: no weights here"
    )
    _assert_nothing_written(workdir, before)


def test_factory_file_that_fails_to_import(workdir: Path) -> None:
    path = _factory(workdir, "import torch\nraise ImportError('missing dependency foo')\n")
    _one_line(_load_fails(f"{path}:make_model"), "importing the factory file failed", "foo")


def test_factory_missing_file_function_and_module(workdir: Path) -> None:
    _one_line(_load_fails(f"py:{workdir / 'nope.py'}:make_model"), "no such factory file")
    _one_line(
        _load_fails(f"{workdir / 'nope.py'}:make_model"), "nope.py:make_model", "no such file"
    )
    path = _factory(workdir, GOOD)
    _one_line(_load_fails(f"{path}:build"), "no function 'build'", "make_model")
    _one_line(
        _load_fails("py:unframe_no_such_pkg.models:make"), "importing the factory module failed"
    )


def test_factory_returning_something_else(workdir: Path) -> None:
    path = _factory(workdir, "def make_model():\n    return 42\n")
    _one_line(_load_fails(f"{path}:make_model"), "returned int, not a torch.nn.Module")


def test_factory_input_and_dynamic_mistakes(workdir: Path) -> None:
    spec = f"{_factory(workdir, GOOD)}:make_model"
    _one_line(_load_fails(spec), "needs example inputs", "input")
    wrong = ConvertOptions(inputs={"image": InputSpec("image", (1, 3))})
    _one_line(_load_fails(spec, wrong), "--input names image", "forward() takes input")
    undeclared = ConvertOptions(
        inputs={"input": InputSpec("input", (2, 3))}, dynamic={"other": (0,)}
    )
    _one_line(_load_fails(spec, undeclared), "--dynamic names 'other'")
    bad_axis = ConvertOptions(inputs={"input": InputSpec("input", (2, 3))}, dynamic={"input": (5,)})
    _one_line(_load_fails(spec, bad_axis), "has 2 axes")


def test_factory_example_inputs_that_raise(workdir: Path) -> None:
    path = _factory(workdir, GOOD + "\ndef example_inputs():\n    raise RuntimeError('no data')\n")
    _one_line(_load_fails(f"{path}:make_model"), "calling example_inputs() failed", "no data")


def test_model_no_exporter_can_capture(workdir: Path) -> None:
    path = _factory(
        workdir,
        """
        import torch

        class Eigen(torch.nn.Module):
            def forward(self, x):
                return torch.linalg.eigvals(x).real

        def make_model():
            return Eigen()
        """,
    )
    before = {p.name for p in workdir.iterdir()}
    options = ConvertOptions(inputs={"x": InputSpec("x", (3, 3))})
    with pytest.warns(ExporterFallbackWarning):
        error = _load_fails(f"{path}:make_model", options, UnsupportedError)
    assert error.exit_code == ExitCode.UNSUPPORTED
    _one_line(error, str(path), "translation of the exported graph to ONNX failed", "linalg_eig")
    _assert_nothing_written(workdir, before)


def test_dynamic_axis_the_model_fixes_is_refused_not_baked_in(workdir: Path) -> None:
    path = _factory(
        workdir,
        """
        import torch

        class Fixed(torch.nn.Module):
            def forward(self, x):
                return x.reshape(2, 6)

        def make_model():
            return Fixed()
        """,
    )
    options = ConvertOptions(inputs={"x": InputSpec("x", (4, 3))}, dynamic={"x": (0,)})
    error = _load_fails(f"{path}:make_model", options, UnsupportedError)
    _one_line(error, "torch.export failed", "--dynamic")


def test_pt2_program_no_exporter_can_convert(workdir: Path) -> None:
    class Eigen(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.eigvals(x).real

    path = workdir / "eigen.pt2"
    torch.export.save(torch.export.export(Eigen(), (torch.randn(3, 3),)), path)
    error = _load_fails(path, kind=UnsupportedError)
    assert error.exit_code == ExitCode.UNSUPPORTED
    _one_line(error, "eigen.pt2", "cannot convert the exported program", "linalg_eig")
