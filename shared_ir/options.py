"""Options of one conversion, read by frontends and backends alike (they live below both)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unframe.shared_ir.inputs import InputSpec


@dataclass
class ConvertOptions:
    """Options every adapter may read; adapters ignore what does not concern them."""

    opset: int | None = None
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    dynamic: dict[str, tuple[int, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
