"""Shared fixtures: model writers and a toy third-party framework adapter."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import onnx
import pytest

import unframe.converters.registry as registry


@pytest.fixture
def write_model(tmp_path: Path):
    def write(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return write


TOY_ADAPTER = textwrap.dedent(
    '''
    from pathlib import Path
    import onnx_ir as ir
    from unframe.converters.framework import Framework
    from unframe.shared_ir import io
    from unframe.shared_ir.op_registry import OpRegistry

    ops = OpRegistry("toy", "export")

    @ops.register("Relu", since=14)
    def relu_v14(node, ctx):
        return None

    class ToyFramework(Framework):
        """Writes ONNX under a .toy suffix but only exports Relu."""
        name = "toy"
        extra = "toy"
        reads = (".toy",)
        writes = (".toy",)

        def load(self, path, options):
            return io.load_onnx(path)

        def save(self, model, path, options):
            io.save_onnx(model, path)

        def export_registry(self):
            return ops

    class MissingFramework(ToyFramework):
        name = "missing"
        extra = "missing"
        requires = ("definitely_not_an_installed_module_x",)
        reads = (".missing",)
        writes = (".missing",)
    '''
)


@pytest.fixture
def toy_frameworks(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Registers third-party style adapters through entry points, as a plugin package would."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "unframe_toy_plugin.py").write_text(TOY_ADAPTER)
    monkeypatch.syspath_prepend(str(folder))
    points = dict(registry._entry_points())
    for name, target in (("toy", "ToyFramework"), ("missing", "MissingFramework")):
        points[name] = EntryPoint(name, f"unframe_toy_plugin:{target}", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: points)
    registry.get_framework.cache_clear()
    yield
    registry.get_framework.cache_clear()
    sys.modules.pop("unframe_toy_plugin", None)
