"""Packages coremltools itself writes, for the frontend tests: ``ct.convert`` to an ML Program at
float32, the MIL ops a program holds, and a package read by our frontend and run on onnxruntime
against the source framework's outputs (the oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.native import coremltools, load_mil_program, quiet_stderr
from unframe.converters.conformance import collect_node_tests
from unframe.frontends.coreml.driver import load_coreml
from unframe.shared_ir.runner import run_onnxruntime

RTOL, ATOL = 1e-4, 1e-5


def write_mlprogram(
    source: Any, path: Path, inputs: list[Any] | None = None, *, ios16: bool = False
) -> Path:
    """``source`` (a traced or scripted torch module, or a MIL program) converted by
    ``ct.convert`` to an ML Program computing in float32, saved at ``path``."""
    ct = coremltools()
    with quiet_stderr():
        package = ct.convert(
            source,
            inputs=inputs,
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.iOS16 if ios16 else None,
        )
    package.save(str(path))
    return path


def write_traced(module: Any, example: Any, path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """``module`` run on ``example`` by torch, then traced on it and written as by
    ``write_mlprogram`` with one input ``x``: the package, the example and torch's outputs."""
    import torch

    with torch.no_grad():
        expected = module(example).numpy()
    ct = coremltools()
    with quiet_stderr():  # tracing's warnings too, as ct.convert's
        traced = torch.jit.trace(module, example)
    write_mlprogram(traced, path, [ct.TensorType(name="x", shape=tuple(example.shape))])
    return path, example.numpy(), expected


def assert_package_matches(path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray) -> None:
    """The package read by our frontend and run on onnxruntime gives ``expected``, its one
    output."""
    (actual,) = run_onnxruntime(load_coreml(path), feeds).values()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def _block_op_types(block: Any, nested: bool) -> set[str]:
    found = set()
    for op in block.operations:
        found.add(op.op_type)
        if nested:
            for inner in op.blocks:
                found |= _block_op_types(inner, nested)
    return found


def program_op_types(program: Any, *, nested: bool = True) -> set[str]:
    """The op types of a MIL program's main function, and unless ``nested`` is False of every
    block nested in its ops (loop and branch bodies)."""
    return _block_op_types(program.functions["main"], nested)


def package_op_types(path: Path, *, nested: bool = True) -> set[str]:
    """``program_op_types`` of the package at ``path``."""
    return program_op_types(load_mil_program(path), nested=nested)


def node_test_ops_not_in(name: str, path: Path) -> set[str]:
    """The MIL ops but const the Core ML backend emits for onnx's node test ``name`` that the
    package at ``path`` does not hold."""
    from unframe.backends.coreml.driver import export_mlprogram

    (case,) = collect_node_tests(name_pattern=f"^{name}$")
    exported = export_mlprogram(ir.from_proto(case.model))
    return program_op_types(exported.mlmodel._mil_program) - package_op_types(path) - {"const"}
