"""The ONNX adapter: the IR is ONNX, so its frontend and backend are load and save."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir import opset
from unframe.shared_ir.io import load_onnx
from unframe.shared_ir.runner import run_onnxruntime, run_reference_path


class OnnxFramework(Framework):
    """Reads and writes ``.onnx`` (with external data); runs on onnxruntime."""

    name = "onnx"
    conformance_note = (
        "The baseline: the ONNX adapter writes each test's model and onnxruntime alone runs it, "
        "without the fallback to `onnx.reference` that `unframe validate` uses; failures are "
        "onnxruntime's (kernels it lacks, types its Python API cannot take, such as bfloat16)."
    )
    extra = None
    requires = ("onnx", "onnxruntime")
    reads = (".onnx",)
    writes = (".onnx",)

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        from unframe.frontends.onnx import import_onnx

        return import_onnx(path)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        from unframe.backends.onnx import export_onnx

        export_onnx(model, path, options.opset)

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # onnxruntime reads the file itself: check it first as every load does (external data in
        # the model's folder, sizes, structure), which costs no weight read.
        model = load_onnx(path)
        return run_reference_path(path, inputs, model=model).outputs

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        # Conformance of the ONNX adapter measures onnxruntime itself, without the fallback.
        if options is not None and options.opset is not None:
            model = opset.convert_opset(model, options.opset)
        return run_onnxruntime(model, inputs)
