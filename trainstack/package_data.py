"""The files trainstack ships beside its code, found through the import system, never through a checkout path.

A platform team's CDK app installs trainstack from a wheel: there is no repository around it, so every data file
(schemas, tables, the notebook's lifecycle scripts) and the training code folder are read as package data.
"""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path


def data_file(package: str, name: str) -> Traversable:
    """A file shipped in `package` (`data_file("trainstack.schemas", "x.json").read_text()`)."""
    return files(package).joinpath(name)


def package_dir(package: str) -> Path:
    """The folder `package` is installed in, as a real directory: CDK assets (the training image's build context,
    the code tarball) are built from files on disk, not from a zip."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"package {package!r} is not installed")
    if spec.origin and spec.origin != "namespace":
        return Path(spec.origin).resolve().parent
    # training_code has no __init__.py (it is the job's /opt/ml/code, not a module of ours): a namespace package,
    # whose modules come from the first of its folders, as the import system searches them.
    for location in spec.submodule_search_locations or []:
        if Path(location).is_dir():
            return Path(location).resolve()
    raise ModuleNotFoundError(f"package {package!r} has no folder on disk")


def training_code_dir() -> Path:
    """The training code every job runs (`training_code/`: the entry point, its requirements and Dockerfile)."""
    return package_dir("training_code")
