"""Maps the repository root onto the single import package ``unframe``.

The design card fixes the top-level layout (``converters/ frontends/ backends/ shared_ir/ cli/``);
this file installs those folders as ``unframe.converters`` and so on, never as bare top-level
modules. Everything else lives in ``pyproject.toml``.
"""

from __future__ import annotations

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

SUBPACKAGES = ("converters", "frontends", "backends", "shared_ir", "cli")

packages = ["unframe"]
for top in SUBPACKAGES:
    packages.append(f"unframe.{top}")
    packages.extend(f"unframe.{top}.{sub}" for sub in find_packages(top))


class BuildPy(build_py):
    """Keeps this file itself out of the ``unframe`` package that the root folder becomes."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "unframe" and m[1] == "setup")]


setup(packages=packages, package_dir={"unframe": "."}, cmdclass={"build_py": BuildPy})
