"""unframe: move trained models between frameworks through one shared ONNX IR.

Each framework has one frontend (native model -> IR) and one backend (IR -> native model), so n
adapters give every n x n conversion. Frameworks are imported lazily: ``import unframe`` needs none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unframe.shared_ir.lazy_imports import defer_sympy_in_onnx_ir

__version__ = "0.1.0"

# Here, because every module of unframe is imported after this one: onnx_ir, whichever of them
# imports it first, then leaves sympy (a third of a second) unimported until a symbolic dimension
# does arithmetic (issue #15). Does nothing where onnx_ir or sympy is imported already.
defer_sympy_in_onnx_ir()

_API = {
    "batch": "unframe.converters.batch",
    "load": "unframe.converters.api",
    "save": "unframe.converters.api",
    "convert": "unframe.converters.api",
    "validate": "unframe.converters.api",
    "roundtrip": "unframe.converters.api",
    "ConversionResult": "unframe.converters.api",
    "ValidationResult": "unframe.converters.api",
    "RoundtripResult": "unframe.converters.api",
    "get_framework": "unframe.converters.registry",
    "framework_names": "unframe.converters.registry",
    "from_torch": "unframe.frontends.pytorch",
    "to_torch": "unframe.backends.pytorch",
}

__all__ = [
    "ConversionResult",
    "RoundtripResult",
    "ValidationResult",
    "batch",
    "convert",
    "framework_names",
    "from_torch",
    "get_framework",
    "load",
    "roundtrip",
    "save",
    "to_torch",
    "validate",
]

if TYPE_CHECKING:
    from unframe.converters.api import (
        ConversionResult,
        RoundtripResult,
        ValidationResult,
        convert,
        load,
        roundtrip,
        save,
        validate,
    )
    from unframe.converters.batch import batch
    from unframe.converters.registry import framework_names, get_framework


def __getattr__(name: str) -> Any:
    module_name = _API.get(name)
    if module_name is None:
        raise AttributeError(f"module 'unframe' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
