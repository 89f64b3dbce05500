"""import-linter contracts of unframe's own that its stock contracts cannot say.

``NativeLayerContract``: a frontend ``frontends.X`` may import of the backends only
``backends.X.native``, the framework's format layer that both directions share; it never reaches
into a backend's converters, and never into another framework. ``make lint`` runs it with the
stock contracts in ``.importlinter`` (``PYTHONPATH=scripts`` makes this module importable there).
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


class NativeLayerContract(Contract):
    """Each child X of ``frontends`` imports from ``backends`` only ``backends.X.native``."""

    type_name = "native_layer"

    frontends = fields.StringField()
    backends = fields.StringField()

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        frontends, backends = str(self.frontends), str(self.backends)
        violations: list[dict[str, Any]] = []
        for frontend in sorted(graph.find_children(frontends)):
            framework = frontend.rsplit(".", 1)[1]
            allowed = f"{backends}.{framework}.native"
            for importer in sorted({frontend} | graph.find_descendants(frontend)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    inside_backends = imported == backends or imported.startswith(backends + ".")
                    if not inside_backends:
                        continue
                    if imported == allowed or imported.startswith(allowed + "."):
                        continue
                    lines = [
                        detail["line_number"]
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    ]
                    violations.append(
                        {
                            "importer": importer,
                            "imported": imported,
                            "lines": lines,
                            "allowed": allowed,
                        }
                    )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            lines = ", ".join(f"l.{line}" for line in violation["lines"])
            output.print(
                f"{violation['importer']} imports {violation['imported']} ({lines}); "
                f"a frontend may import only {violation['allowed']}"
            )
        output.new_line()
