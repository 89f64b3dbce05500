"""The ``.mlpackage`` directory: recognising one, and reading its spec and MIL program back.

A package holds ``Manifest.json`` and, under ``Data/com.apple.CoreML/``, the spec
(``model.mlmodel``, a protobuf) and for an ML Program its weights (``weights/weight.bin``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unframe.backends.coreml.native._loading import coremltools, quiet_stderr

MANIFEST = "Manifest.json"
DATA_DIR = Path("Data") / "com.apple.CoreML"
SPEC_FILE = DATA_DIR / "model.mlmodel"
WEIGHTS_DIR = DATA_DIR / "weights"


def is_mlpackage(path: Path) -> bool:
    """Whether ``path`` is a directory laid out as an mlpackage (manifest naming its spec)."""
    try:
        if path.is_symlink() or not path.is_dir():
            return False
        manifest = json.loads((path / MANIFEST).read_text())
        entries = manifest.get("itemInfoEntries", {})
        return isinstance(entries, dict) and any(
            isinstance(entry, dict) and entry.get("path", "").endswith("model.mlmodel")
            for entry in entries.values()
        )
    except (OSError, ValueError, AttributeError):
        return False


def load_spec(path: Path) -> Any:
    """The ``Model`` protobuf of a package or ``.mlmodel`` file, read by coremltools (not compiled)."""
    ct = coremltools()
    with quiet_stderr():
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def load_mil_program(path: Path) -> Any:
    """The package's ML Program as a MIL ``Program``, read by coremltools' milproto reader."""
    coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = load_spec(path)
    with quiet_stderr():
        return load(
            spec,
            specification_version=spec.specificationVersion,
            file_weights_dir=str(path / WEIGHTS_DIR),
        )
