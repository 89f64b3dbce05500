"""The toyfw adapter: the ``Framework`` subclass that the entry point names.

It only declares and delegates; the directions are imported when first used, so that listing
frameworks stays fast and works without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from toyfw.native import read_toy, run_toy, write_toy
from unframe.converters.framework import Framework
from unframe.shared_ir.inputs import align_feeds
from unframe.shared_ir.op_registry import OpRegistry
from unframe.shared_ir.options import ConvertOptions


class ToyFramework(Framework):
    """toyfw: reads and writes ``.toy`` JSON files and runs them with numpy."""

    name = "toyfw"
    reads = (".toy",)
    writes = (".toy",)

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        from toyfw.frontend.driver import import_toy

        return import_toy(read_toy(path), str(path))

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        from toyfw.backend.driver import export_toy

        write_toy(export_toy(model), path)

    def export_registry(self) -> OpRegistry[Any]:
        from toyfw.backend.driver import export_registry

        return export_registry()

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        document = read_toy(path)
        names = [entry["name"] for entry in document["inputs"]]
        return run_toy(document, align_feeds(names, inputs))
