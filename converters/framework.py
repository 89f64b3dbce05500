"""The adapter contract: one ``Framework`` subclass per framework, found through entry points.

An adapter declares what it reads and writes, brings its frontend (native model -> IR) and backend
(IR -> native model), says which ONNX ops its backend converts, and runs native models where its
runtime exists here. ``converters.api`` composes any two of them; there is no pairwise code.
"""

from __future__ import annotations

import abc
import importlib.util
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from unframe.shared_ir.errors import FrameworkNotInstalledError, UnsupportedOp
from unframe.shared_ir.op_registry import OpRegistry
from unframe.shared_ir.options import ConvertOptions
from unframe.shared_ir.output import is_regular_file


class Framework(abc.ABC):
    """A framework adapter. Subclasses set the class attributes and implement load/save/run."""

    name: ClassVar[str]
    #: pip extra that installs the framework's dependencies (``unframe[extra]``).
    extra: ClassVar[str | None] = None
    #: importable modules the adapter needs; checked lazily, never imported at registry time.
    requires: ClassVar[tuple[str, ...]] = ()
    #: file suffixes this framework reads and writes, used to detect it from a path.
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    #: True where the native model is a directory rather than one file.
    writes_directory: ClassVar[bool] = False
    #: Markdown that explains this backend's conformance report (how it runs, what it binds).
    conformance_note: ClassVar[str] = ""
    #: True where ``load`` builds the IR op by op from the input (a faithful image of it): the
    #: imported graph then gets the checks every ``.onnx`` input gets, a failure blamed on the
    #: input. False for frontends that hand off to an exporter, whose faults are not the input's.
    checks_imported_ir: ClassVar[bool] = False

    # -- availability -------------------------------------------------------------------------
    def missing_modules(self) -> list[str]:
        return [module for module in self.requires if importlib.util.find_spec(module) is None]

    def is_installed(self) -> bool:
        return not self.missing_modules()

    def ensure_installed(self) -> None:
        missing = self.missing_modules()
        if missing:
            extra = f"pip install 'unframe[{self.extra}]'" if self.extra else "install it"
            raise FrameworkNotInstalledError(
                f"the {self.name} adapter needs {', '.join(missing)}, which is not installed",
                framework=self.name,
                hint=extra,
            )

    def runtime_unavailable(self) -> str | None:
        """Why this framework's own runtime cannot run here, or None where it can."""
        if not self.is_installed():
            return f"{self.name} is not installed"
        if type(self).run is Framework.run:
            return f"the {self.name} adapter has no runtime"
        return None

    # -- detection ----------------------------------------------------------------------------
    def matches(self, path: Path, *, for_writing: bool) -> bool:
        """Whether ``path`` looks like a model of this framework (by suffix by default)."""
        suffixes = self.writes if for_writing else self.reads
        name = path.name.lower()
        return any(name.endswith(suffix) for suffix in suffixes)

    def is_own_output(self, path: Path) -> bool:
        """Whether the existing ``path`` is a model this backend writes, which ``--force`` may replace.

        By default a regular file for a file format (never a link's target, a directory or a device)
        and nothing for a directory format, whose adapter says which directories are its models.
        """
        return not self.writes_directory and is_regular_file(path)

    # -- conversion ---------------------------------------------------------------------------
    @abc.abstractmethod
    def load(self, path: Path, options: ConvertOptions) -> ir.Model:
        """Frontend: reads a native model into the IR."""

    @abc.abstractmethod
    def save(self, model: ir.Model, path: Path, options: ConvertOptions) -> None:
        """Backend: writes ``model`` as a native model at ``path``.

        ``path`` does not exist yet, except for ``writes_directory`` frameworks, which get an empty
        directory there.

        The caller writes to a temporary path and renames it, so a backend never needs to clean up.
        """

    def export_registry(self) -> OpRegistry[Any] | None:
        """The backend's op registry, or None where the backend takes every ONNX op."""
        return None

    def unsupported_nodes(self, model: ir.Model) -> list[UnsupportedOp]:
        """Every node the backend cannot export, found before anything is converted."""
        registry = self.export_registry()
        return [] if registry is None else registry.unsupported_nodes(model)

    # -- runtime ------------------------------------------------------------------------------
    def run(self, path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the native model at ``path``; outputs keyed by name, in the model's output order.

        ``inputs`` are keyed by the IR's input names in graph order; an adapter whose native model
        renamed its inputs matches them by position (``shared_ir.inputs.align_feeds``).
        """
        raise NotImplementedError(f"{self.name} models cannot be run here")

    def declared_inputs(self, path: Path) -> list[ir.Value] | None:
        """The inputs ``run`` takes (names, types, shapes), read from the native model without
        importing it into the IR; None where the adapter cannot (the default): ``api.run`` then
        imports the model to learn them."""
        return None

    def run_exposing(
        self, path: Path, inputs: Mapping[str, np.ndarray], names: Sequence[str]
    ) -> dict[str, np.ndarray] | None:
        """Runs the native model with its intermediate values ``names`` among the outputs.

        ``names`` are values of the model as its import into the IR names them; the result holds
        those the runtime can hand back by that name. None where the runtime cannot (the default):
        ``converters.locate`` then runs the imported IR instead.
        """
        return None

    def run_ir(
        self,
        model: ir.Model,
        inputs: Mapping[str, np.ndarray],
        options: ConvertOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Exports ``model`` with this backend and runs the result on this framework's runtime.

        Adapters whose backend builds a runnable object in memory override this to skip the file.
        """
        with tempfile.TemporaryDirectory(prefix="unframe-run-") as tmp:
            path = Path(tmp) / f"model{self.writes[0] if self.writes else ''}"
            if self.writes_directory:
                path.mkdir()
            self.save(model, path, options or ConvertOptions())
            return self.run(path, inputs)

    def describe(self) -> dict[str, Any]:
        installed = self.is_installed()
        return {
            "name": self.name,
            "reads": list(self.reads),
            "writes": list(self.writes),
            "installed": installed,
            "import": installed,
            "export": installed,
            "run": installed and self.runtime_unavailable() is None,
            "runtime_note": self.runtime_unavailable(),
            "extra": self.extra,
        }
