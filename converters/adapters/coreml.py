"""The Core ML adapter: ML Program packages (``.mlpackage``) and NeuralNetwork ``.mlmodel`` files.

coremltools is imported lazily, inside the methods. Core ML itself runs only on macOS; elsewhere
validation and conformance import a written package back through the frontend and run it on
onnxruntime, and say so ("re-imported, not run in Core ML").
"""

from __future__ import annotations

import platform
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.errors import BadInputError, UnsupportedOp
from unframe.shared_ir.inputs import align_feeds
from unframe.shared_ir.op_registry import OpRegistry

#: Where the backend notes on the converted IR (``metadata_props``, JSON) which graph input and
#: output names Core ML forbids and what the package calls them; ``unframe convert --json``
#: reports it as ``renamed_io``. Node and inner value names, renamed too, stay in the package's
#: own metadata only (the frontend maps them back on import).
RENAMED_IO_KEY = "unframe.renamed_io"


def note_renamed_io(model: ir.Model, renamed: Mapping[str, str]) -> None:
    """Says (one warning) and notes on ``model`` the inputs and outputs the package renamed.

    ``renamed`` maps each MIL name sanitization changed to its ONNX name.
    """
    import json

    io_names = {value.name for value in [*model.graph.inputs, *model.graph.outputs]}
    io_renamed = {onnx: mil for mil, onnx in renamed.items() if onnx in io_names}
    if not io_renamed:
        return
    model.metadata_props[RENAMED_IO_KEY] = json.dumps(io_renamed, sort_keys=True)
    pairs = ", ".join(f"{onnx!r} -> {mil!r}" for onnx, mil in sorted(io_renamed.items()))
    warnings.warn(
        f"coreml: names Core ML does not allow were renamed in the package: {pairs}",
        stacklevel=3,
    )


_NOT_HERE = "Core ML runs only on macOS: packages are re-imported, not run in Core ML"

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: Core ML runs only on macOS, so each test's model is exported to an `.mlpackage`
  (a MIL program built op by op, float32 compute precision), read back by coremltools (spec and
  milproto program), imported into the IR by unframe's Core ML frontend and run on onnxruntime:
  re-imported, not run in Core ML. A pass says the package holds the test's computation as the
  frontend reads it; numbers on a device may differ where Core ML's kernels do.
- **Element types**: Core ML tensors are float32, float16, int32 and bool. int8, int16, int64,
  uint8, uint16, uint32 and uint64 are held as int32 (as coremltools' own converters hold int64;
  casts into a narrower type wrap as ONNX's do), double and bfloat16 as float32; every graph input
  and output held in another type is recorded in the package and the frontend casts it back on
  re-import, so the test compares ONNX's own types. Other types (strings, float8, int4) are
  refused by name.
"""


class CoreMLFramework(Framework):
    """Core ML: reads ``.mlpackage``/``.mlmodel``, writes ML Program ``.mlpackage`` directories."""

    name: ClassVar[str] = "coreml"
    extra: ClassVar[str | None] = "coreml"
    requires: ClassVar[tuple[str, ...]] = ("coremltools",)
    reads: ClassVar[tuple[str, ...]] = (".mlpackage", ".mlmodel")
    writes: ClassVar[tuple[str, ...]] = (".mlpackage",)
    writes_directory: ClassVar[bool] = True
    conformance_note: ClassVar[str] = _CONFORMANCE_NOTE

    def is_own_output(self, path: Path) -> bool:
        from unframe.backends.coreml.native import is_mlpackage

        return is_mlpackage(path)

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        self.ensure_installed()
        from unframe.frontends.coreml.driver import load_coreml

        return load_coreml(path, options)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        if not path.name.lower().endswith(".mlpackage"):
            # coremltools saves an ML Program only as a package; it would fail with a traceback.
            compiled = path.name.lower().endswith(".mlmodelc")
            # convert() names the source on a save's bad input: the message names the output.
            raise BadInputError(
                f"cannot write {path.name}: a Core ML target is an ML Program package, whose "
                "name ends in .mlpackage"
                + (" (unframe does not write compiled .mlmodelc models)" if compiled else ""),
                hint="-o NAME.mlpackage"
                + (
                    ", then compile it with Xcode or `xcrun coremlcompiler compile`"
                    if compiled
                    else ""
                ),
            )
        self.ensure_installed()
        from unframe.backends.coreml.driver import export_mlprogram
        from unframe.backends.coreml.native import quiet_stderr

        exported = export_mlprogram(model, options)
        note_renamed_io(model, exported.renamed)
        if str(options.extra.get("precision") or "float32") == "float16":
            warnings.warn(
                "coreml: float16 compute precision: the package computes in float16 (float32 "
                "inputs and outputs); validation compares it with the float32 source, so its "
                "errors are float16's (about 1e-3 relative): widen --rtol/--atol to accept them",
                stacklevel=3,
            )
        if path.exists():
            path.rmdir()  # the caller's empty staging directory: coremltools writes the package
        with quiet_stderr():
            exported.mlmodel.save(str(path))

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.coreml.driver import export_registry

        return export_registry()

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        # The backend converts function ops it has no converter for through their ONNX bodies.
        from unframe.backends.coreml.driver import export_registry
        from unframe.shared_ir.function_expansion import unsupported_after_expansion

        return unsupported_after_expansion(model, export_registry())

    def runtime_unavailable(self) -> str | None:
        if not self.is_installed():
            return "coremltools is not installed"
        return None if platform.system() == "Darwin" else _NOT_HERE

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the package in Core ML (macOS only); inputs are matched by position."""
        from unframe.backends.coreml.native import coremltools

        ct = coremltools()
        mlmodel = ct.models.MLModel(str(path))
        description = mlmodel.get_spec().description
        names = [feature.name for feature in description.input]
        feeds = align_feeds(names, inputs)
        outputs = mlmodel.predict(feeds)
        return {feature.name: np.asarray(outputs[feature.name]) for feature in description.output}

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Exports ``model``; runs the package in Core ML on macOS, elsewhere re-imports it through
        the frontend and runs it on onnxruntime (re-imported, not run in Core ML)."""
        if self.runtime_unavailable() is None:
            return super().run_ir(model, inputs, options)
        from unframe.shared_ir.runner import run_reference

        output_names = [value.name or "" for value in model.graph.outputs]
        with tempfile.TemporaryDirectory(prefix="unframe-coreml-") as tmp:
            path = Path(tmp) / "model.mlpackage"
            self.save(model, path, options or ConvertOptions())
            reimported = self.load(path, ConvertOptions())
        names = [
            value.name or ""
            for value in reimported.graph.inputs
            if value.name not in reimported.graph.initializers
        ]
        outputs = run_reference(reimported, align_feeds(names, inputs)).outputs
        # The frontend restores the ONNX names from the package's record; by position otherwise.
        if set(outputs) != set(output_names) and len(outputs) == len(output_names):
            outputs = dict(zip(output_names, outputs.values(), strict=True))
        return outputs
