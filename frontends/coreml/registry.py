"""The Core ML import registry: one converter per MIL op type and per NeuralNetwork layer type.

MIL ops live in domain ``coreml.mil`` and are registered at the deployment target whose opset
defined them (``since=IOS15``: the specification version of that target, which is what a
program's function records as its opset). NeuralNetwork layers live in ``coreml.nn`` and are
registered at the specification version that introduced them (1 for the original layers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unframe.shared_ir.op_registry import OpRegistry, load_op_modules

MIL_DOMAIN = "coreml.mil"
NN_DOMAIN = "coreml.nn"

#: The specification versions of the deployment targets that define MIL opsets.
IOS15, IOS16, IOS17, IOS18 = 6, 7, 8, 9

ops: OpRegistry[Callable[..., Any]] = OpRegistry("coreml", "import")


def import_registry() -> OpRegistry[Callable[..., Any]]:
    """The import registry with every converter module (``ops/``) loaded."""
    load_op_modules("unframe.frontends.coreml.ops")
    return ops
