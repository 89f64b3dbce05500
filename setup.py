"""Maps the repository root onto the single import package ``unframe``.

The design card fixes the top-level layout (``converters/ frontends/ backends/ shared_ir/ cli/``);
this file installs those folders as ``unframe.converters`` and so on, never as bare top-level
modules. Everything else lives in ``pyproject.toml``.
"""

from __future__ import annotations

from setuptools import find_packages, setup

SUBPACKAGES = ("converters", "frontends", "backends", "shared_ir", "cli")

packages = ["unframe"]
for top in SUBPACKAGES:
    packages.append(f"unframe.{top}")
    packages.extend(f"unframe.{top}.{sub}" for sub in find_packages(top))

setup(packages=packages, package_dir={"unframe": "."})
