"""The zoo's source models for the per-framework zoo tests: each model's eager module, its
``.onnx`` export by the PyTorch frontend (dynamic batch and sequence), and
run-time inputs of another batch and length than the export's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
import torch
from models import torch_zoo as zoo
from models.test_torch_models import TRANSFORMERS, _LastHidden

from unframe.frontends.pytorch import from_torch


class _Case:
    """A source model: the eager module, its ``.onnx`` export, and run-time inputs."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        if name in TRANSFORMERS:
            self.module: torch.nn.Module = _LastHidden(TRANSFORMERS[name]()).eval()
            self.input_name = "input_ids"
            example = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
            model = from_torch(self.module, (example,), dynamic_shapes={"input_ids": (0, 1)})
            other = torch.randint(0, 100, (3, 11), generator=torch.Generator().manual_seed(1))
            self.run_inputs = [other]
        else:
            entry = zoo.ZOO[name]
            self.module = entry.model()
            self.input_name = "x"
            model = from_torch(self.module, entry.inputs(2), dynamic_shapes=entry.dynamic)
            self.run_inputs = [entry.inputs(3, seed=7)[0]]
            if 1 in entry.dynamic.get("x", ()):  # a longer sequence too
                longer = list(entry.input_shape(2))
                longer[1] += 3
                gen = torch.Generator().manual_seed(9)
                self.run_inputs.append(torch.randn(*longer, generator=gen))
        self.onnx_path = folder / f"{name}.onnx"
        ir.save(model, self.onnx_path)

    def expected(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.module(x).numpy()


def source_cases(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], _Case]:
    """Each model's source, exported once per test module (the body of its ``case`` fixture)."""
    folder = tmp_path_factory.mktemp("sources")
    cases: dict[str, _Case] = {}

    def get(name: str) -> _Case:
        if name not in cases:
            cases[name] = _Case(name, folder)
        return cases[name]

    return get
