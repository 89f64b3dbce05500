"""The PyTorch adapter: ``.pt2``/TorchScript files and Python model factories.

torch is imported lazily, inside the methods, so that listing adapters (``unframe --help``) never
imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from unframe.converters.framework import ConvertOptions, Framework
from unframe.shared_ir.factory_spec import is_factory_spec
from unframe.shared_ir.op_registry import OpRegistry

_CONFORMANCE_NOTE = """\
## How to read this report

- **Runtime**: each test's model is built by the backend into a `torch.fx.GraphModule` and run
  eagerly by torch (`PyTorchFramework.run_ir`); the `.pt2` serialization (`torch.export`) is not
  repeated per test. Where a test feeds shapes, axes or sizes as graph inputs, `torch.export` needs
  them as constants; models that get them from initializers or `Shape` export with symbolic dims.
- **Not expressible in torch**: string tensors (StringSplit, StringNormalizer, StringConcat,
  RegexFullMatch, LabelEncoder, TfIdfVectorizer, Equal on strings), ImageDecoder (needs an image
  codec), and random ops whose expected values come from numpy's generator (Bernoulli,
  training-mode Dropout).
"""


class PyTorchFramework(Framework):
    """PyTorch: reads ``.pt2``/TorchScript/factories, writes ``.pt2`` (``torch.export``)."""

    name: ClassVar[str] = "pytorch"
    extra: ClassVar[str | None] = "pytorch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    reads: ClassVar[tuple[str, ...]] = (".pt2", ".pt", ".ts", ".pth")
    writes: ClassVar[tuple[str, ...]] = (".pt2",)
    conformance_note: ClassVar[str] = _CONFORMANCE_NOTE

    def matches(self, path: Path, *, for_writing: bool) -> bool:
        if not for_writing and is_factory_spec(path):
            return True
        return super().matches(path, for_writing=for_writing)

    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        self.ensure_installed()
        from unframe.frontends.pytorch import load_pytorch

        return load_pytorch(path, options)

    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        self.ensure_installed()
        from unframe.backends.pytorch import save_pt2

        save_pt2(model, path, options.inputs, options.dynamic)

    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.ensure_installed()
        from unframe.backends.pytorch import run_native
        from unframe.frontends.pytorch.loading import instantiate_factory

        if is_factory_spec(path):
            # The source of a conversion may be a factory: run the user's own module on the
            # inputs, so validation compares against PyTorch itself, not against our import.
            import torch

            from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy

            module = instantiate_factory(str(path)).eval()
            with torch.no_grad():
                result = module(*tensors_from_numpy(list(inputs.values())))
            return outputs_to_numpy(result)
        return run_native(path, inputs)

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Builds the ``GraphModule`` in memory and runs it (no export, no file)."""
        self.ensure_installed()
        import torch

        from unframe.backends.pytorch import to_torch
        from unframe.backends.pytorch.dtypes import narrow_emulated
        from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy

        module = to_torch(model)
        names = [
            v.name or "" for v in model.graph.inputs if v not in model.graph.initializers.values()
        ]
        if set(names) <= set(inputs):
            arrays = [inputs[name] for name in names]
        else:
            arrays = list(inputs.values())[: len(names)]
        with torch.no_grad():
            result = module(*tensors_from_numpy(arrays))
        outputs = outputs_to_numpy(result, [v.name or "" for v in model.graph.outputs])
        # int4/float4/... are computed in a wider dtype: hand them back in their ONNX type.
        for value, (name, array) in zip(model.graph.outputs, list(outputs.items()), strict=False):
            if isinstance(array, np.ndarray):
                outputs[name] = narrow_emulated(array, value.dtype)
        return outputs

    def export_registry(self) -> OpRegistry[Any] | None:
        from unframe.backends.pytorch.driver import load_converters
        from unframe.backends.pytorch.registry import ops

        load_converters()
        return ops
