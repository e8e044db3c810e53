"""Does an environment's training image already satisfy `training_code/requirements.txt`?

The SageMaker training toolkit runs `pip install -r requirements.txt` before the entry point. Jobs in a
private VPC (network.mode `create` / `existing`) cannot reach a package index, and a framework replaced at
job start (a PyPI torch over the image's CUDA build, transformers 4 -> 5) is a different image from the
one tested. So synth refuses an image that does not already hold every requirement, naming both versions.

What an image holds comes from the shipped table `trainstack/data/dlc_images.json` (only versions the DLC
tag states), and in `asset` mode from the `==` pins of `training_code/Dockerfile` on top of its base DLC.
Packages an image does not list:
- on the embedded AWS the job runs in the project's own Python environment, so what that environment has
  installed stands in for the image's missing packages (framework packages still come from the DLC);
- with `network.mode: none` (jobs have internet) the toolkit may install them at job start;
- in a private VPC they are an error: use `image.mode: asset` (the Dockerfile pins them).
`repository` mode and `image.uri` name an image synth cannot see, so nothing is checked (README says so).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from trainstack.package_data import data_file, training_code_dir

DLC_TABLE = data_file("trainstack", "data/dlc_images.json")
REQUIREMENTS_PATH = training_code_dir() / "requirements.txt"
DOCKERFILE_PATH = training_code_dir() / "Dockerfile"

# Replacing these at job start would change the image under the code: never allowed, internet or not.
FRAMEWORK_PACKAGES = frozenset({"torch", "transformers"})
_PIN = re.compile(r"""["']?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([0-9][A-Za-z0-9.+!-]*)["']?""")


class ImageMismatch(ValueError):
    """The configured image cannot run training_code/ as it stands."""


@dataclass(frozen=True)
class DlcImage:
    repository: str
    tag: str
    python: str
    packages: dict[str, str]


@cache
def supported_images() -> dict[tuple[str, str], DlcImage]:
    table = json.loads(DLC_TABLE.read_text(encoding="utf-8"))
    images = [
        DlcImage(e["repository"], e["tag"], e["python"], {canonicalize_name(k): v for k, v in e["packages"].items()})
        for e in table["images"]
    ]
    return {(image.repository, image.tag): image for image in images}


def requirements(path: Path = REQUIREMENTS_PATH) -> list[Requirement]:
    """The requirement lines of a pip requirements file (comments, blank lines and options skipped)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def pins(path: Path) -> dict[str, str]:
    """Every `name==version` in a requirements file or a Dockerfile's pip install lines."""
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def check_image(
    *,
    mode: str,
    repository: str,
    tag: str,
    embedded: bool,
    internet: bool,
    requirements_path: Path = REQUIREMENTS_PATH,
    dockerfile_path: Path = DOCKERFILE_PATH,
) -> None:
    """Raise ImageMismatch naming the image's version and the requirement it fails; None when it fits."""
    image = supported_images().get((repository, tag))
    if image is None:
        known = ", ".join(f"{r}:{t}" for r, t in supported_images())
        raise ImageMismatch(
            f"image {repository}:{tag} is not in the supported DLC table (trainstack/data/dlc_images.json), so "
            f"synth cannot tell whether it satisfies training_code/requirements.txt; supported: {known}"
        )
    where = f"image {repository}:{tag}"
    held = dict(image.packages)
    if mode == "asset":
        held.update(pins(dockerfile_path))
        where = f"the image built from training_code/Dockerfile (FROM {repository}:{tag})"
    installed_by_environment = _installed if embedded else _nothing
    for requirement in requirements(requirements_path):
        name = canonicalize_name(requirement.name)
        version = held.get(name)
        if version is None and name not in FRAMEWORK_PACKAGES:
            version = installed_by_environment(name)
        if version is None:
            if internet and name not in FRAMEWORK_PACKAGES:
                continue  # the toolkit installs it at job start; the job has internet
            raise ImageMismatch(
                f"{where} does not ship {name}, which training_code/requirements.txt needs ({requirement}); "
                "jobs in a private VPC cannot install it at start: use image.mode 'asset' (the Dockerfile pins it)"
            )
        if not requirement.specifier.contains(Version(version), prereleases=True):
            raise ImageMismatch(
                f"{where} ships {name} {version}, but training_code/requirements.txt needs {requirement}: "
                "the toolkit would replace the image's framework at job start. Choose a DLC whose "
                f"{name} satisfies it (trainstack/data/dlc_images.json) or change the pin"
            )


def _installed(name: str) -> str | None:
    """The version this Python environment has installed, where the embedded AWS runs jobs."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nothing(name: str) -> None:
    return None
