"""Pack a user's source folder as the SageMaker SDK does (`sourcedir.tar.gz`), for a private network.

The SDK's `Estimator(entry_point=..., source_dir=...)` tars the folder and uploads it; the training
toolkit unpacks it into /opt/ml/code and, for a `.py` entry point, runs `pip install -r requirements.txt`
there. In a private subnet that pip has no index to reach, so the packer resolves the requirements here,
where an index is reachable (`pip download` for the image's Python and platform), ships the wheels in
`wheels/` and rewrites requirements.txt to install from them only (`--no-index --find-links wheels`).
A requirement that cannot be resolved fails now, naming the package, not twenty minutes into a job.

What the folder may hold is an allow-list, checked before anything is resolved or packed: a requirements line is a
PEP 508 requirement by name (`packaging` parses it), a comment or blank, nothing else, so no line can point the
packing pip or the job's pip at an index, a link, a URL or another file (`-i`, `-f`, `--extra-index-url`,
`name @ https://...`, `-e`, `-r`, `-c`). A symbolic link is packed as what it points to only when that is inside
the folder (a linked folder is followed, its files packed under the link's name); a link out of the folder would
pack whatever it names (a credentials file), so it is refused, naming the link.

The tarball is byte-for-byte reproducible (sorted entries, fixed mtimes, owners and modes, a gzip header
without time or name), so its SHA-256 names it: `code/sourcedir/<sha256>/sourcedir.tar.gz` under the
artifacts bucket, uploaded only when HeadObject does not find it. The platform's own package of
training_code/ (trainstack/platform/constructs/code_package.py) is built by the same `build_source_tarball`.

Standard library only (boto3 clients are passed in): the notebooks import this on a notebook instance
that has no internet access and none of the project's other dependencies.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # a notebook instance's bare Python: pip always carries its own copy
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement  # type: ignore[no-redef]

# Never shipped to a training host: caches, local build output and tests.
EXCLUDED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", ".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# 1980-01-01, the earliest timestamp zip-based tools accept; any constant would do.
_FIXED_MTIME = 315532800

# Where user packages go in the artifacts bucket: the execution role reads `code/` (CODE_PREFIX in
# trainstack/platform/constructs/training_run_input.py) and the notebook role writes there.
PACKAGE_KEY_PREFIX = "code/sourcedir/"
REQUIREMENTS_FILE = "requirements.txt"
WHEELS_DIR = "wheels"
# SageMaker training instances are x86_64 Linux; DLCs are built for manylinux2014 or newer.
WHEEL_PLATFORM = "manylinux2014_x86_64"


class PackagingError(Exception):
    """The folder cannot be packed; the message names the file or the requirement and what to do."""


def _excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def source_files(source_dir: Path) -> dict[str, Path]:
    """The files to pack by archive name, links inside the folder followed; a link leaving it is refused."""
    root = source_dir.resolve()
    files: dict[str, Path] = {}
    # (archive folder, real folder, real folders above it): a link back up the chain would never end.
    pending: list[tuple[str, Path, tuple[Path, ...]]] = [("", root, (root,))]
    while pending:
        prefix, folder, chain = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if _excluded(entry.name):
                    continue
                name = f"{prefix}{entry.name}"
                real = Path(entry.path)
                if entry.is_symlink():
                    real = real.resolve()
                    if not real.is_relative_to(root):
                        raise PackagingError(
                            f"{source_dir / name}: a symbolic link to {real}, outside {source_dir}; it would pack "
                            "that file's content. Copy what the job needs into the folder instead"
                        )
                    if not real.exists():
                        raise PackagingError(f"{source_dir / name}: a symbolic link to {real}, which does not exist")
                    if real in chain:
                        raise PackagingError(
                            f"{source_dir / name}: a symbolic link to {real}, a folder that contains it (a loop)"
                        )
                if real.is_dir():
                    pending.append((f"{name}/", real, (*chain, real)))
                elif real.is_file():
                    files[name] = real
    return files


def check_requirements(requirements: Path) -> None:
    """Refuse every line that is not a PEP 508 requirement by name, a comment or blank, naming file and line.

    An allow-list: pip's line syntax has options that fetch from a server or read another file (`-i`, `-f`,
    `--extra-index-url`, `--trusted-host`, `-e`, `-r`, `-c`, direct URLs), and new ones can be added.
    """
    lines = requirements.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        first = number + 1
        line = lines[number]
        # pip joins a line ending in a backslash with the next one before reading it.
        while line.endswith("\\") and number + 1 < len(lines):
            number += 1
            line = line[:-1] + lines[number]
        number += 1
        # pip's comment rule: '#' at the start or after whitespace.
        text = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not text:
            continue
        where = f"{requirements}, line {first}: {text!r}"
        if text.startswith("-"):
            raise PackagingError(
                f"{where}: pip options are not allowed in {REQUIREMENTS_FILE} (jobs install only the wheels packed "
                "with the code); expected a requirement such as 'tabulate==0.10.0'. Configure an index or mirror for "
                "packing with pip's own settings (PIP_INDEX_URL, pip.conf)"
            )
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise PackagingError(
                f"{where}: not a requirement ({error}); expected a PEP 508 requirement such as 'tabulate==0.10.0'"
            ) from None
        if requirement.url:
            raise PackagingError(
                f"{where}: a requirement from a URL ({requirement.url}) is not allowed; name the package and "
                "version and let the packing index resolve it"
            )


def build_source_tarball(source_dir: Path, destination: Path, replace: Mapping[str, Path] | None = None) -> Path:
    """Write `destination` (a .tar.gz) with the files of `source_dir` at the archive root.

    `replace` maps archive names to files that replace (or add to) the folder's own: the rewritten
    requirements.txt and the wheels.
    """
    entries = {**source_files(source_dir), **(replace or {})}
    if not entries:
        raise ValueError(f"{source_dir}: no files to package")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            path = entries[name]
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = _FIXED_MTIME
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return destination


def image_python_version(image_uri: str) -> str:
    """The image's CPython as pip's --python-version wants it ("311"), from the DLC tag's `-py3NN-` part.

    The one place that knows an image's Python: point it at a table of DLC tags when one exists.

    DLC tags name their Python (`2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04`); an image
    whose tag does not (a platform-built tag such as `latest`) needs the version given explicitly.
    """
    match = re.search(r"(?:^|[-:])py(3)(\d{1,2})(?:-|$)", image_uri.rsplit("/", 1)[-1])
    if not match:
        raise PackagingError(
            f"cannot tell the Python version of image {image_uri!r} from its tag (no -py3NN- part); "
            "give it explicitly (--python-version 3.11 / python_version='3.11')"
        )
    return match.group(1) + match.group(2)


def _normalise_python_version(version: str) -> str:
    digits = version.replace(".", "").removeprefix("py")
    if not re.fullmatch(r"3\d{1,2}", digits):
        raise PackagingError(f"python version {version!r}: expected something like 3.11 or 311")
    return digits


def _unresolvable(stderr: str) -> str:
    """The requirement pip could not resolve, from its error output."""
    for pattern in (
        r"No matching distribution found for ([^\s]+)",
        r"Could not find a version that satisfies the requirement ([^\s]+)",
        r"Invalid requirement: '?([^'\n]+)'?",
    ):
        found = re.search(pattern, stderr)
        if found:
            return found.group(1)
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(pip gave no reason)"


def download_wheels(requirements: Path, wheels_dir: Path, python_version: str) -> list[Path]:
    """`pip download` the requirements (and their dependencies) as binary wheels for the training image.

    pip reads the caller's own configuration (PIP_INDEX_URL, pip.conf, PIP_FIND_LINKS...), so a team
    behind a mirror or CodeArtifact packs through it unchanged.
    """
    wheels_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
        "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version", python_version,
        "--implementation", "cp", "-d", str(wheels_dir), "-r", str(requirements),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=requirements.parent, check=False)
    if done.returncode != 0:
        raise PackagingError(
            f"{requirements}: cannot resolve {_unresolvable(done.stderr)} as a binary wheel for CPython "
            f"{python_version[0]}.{python_version[1:]} on {WHEEL_PLATFORM}; jobs have no package index, so every "
            "requirement must be available as a wheel here (check the name and version, or pin one that has a "
            f"wheel).\npip said:\n{done.stderr.strip()[-2000:]}"
        )
    return sorted(wheels_dir.glob("*.whl"))


def offline_requirements(original: Path, destination: Path) -> Path:
    """The user's requirements.txt (checked by `check_requirements`), installing from the shipped wheels only."""
    kept = original.read_text(encoding="utf-8").splitlines()
    header = [
        "# Rewritten by trainstack: jobs run without a package index (private subnet); install only from the",
        f"# wheels packed next to this file. The original is {REQUIREMENTS_FILE}.orig.",
        "--no-index",
        f"--find-links {WHEELS_DIR}",
    ]
    destination.write_text("\n".join([*header, *kept]) + "\n", encoding="utf-8")
    return destination


@dataclass(frozen=True)
class SourcePackage:
    """A packed folder: the tarball, its content address and what went in."""

    tarball: Path
    sha256: str
    entry_point: str
    wheels: tuple[str, ...]

    def key(self) -> str:
        return f"{PACKAGE_KEY_PREFIX}{self.sha256}/sourcedir.tar.gz"

    def uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key()}"


def check_entry_point(source_dir: Path, entry_point: str) -> None:
    parts = Path(entry_point).parts
    if entry_point.startswith("/") or ".." in parts or not entry_point.endswith((".py", ".sh")):
        raise PackagingError(
            f"entry point {entry_point!r}: expected a .py or .sh file relative to {source_dir} "
            "(no leading '/', no '..')"
        )
    if not (source_dir / entry_point).is_file():
        raise PackagingError(f"entry point {entry_point!r} is not a file in {source_dir}")


def pack(
    source_dir: Path | str,
    entry_point: str,
    *,
    image_uri: str | None = None,
    python_version: str | None = None,
    work_dir: Path | None = None,
) -> SourcePackage:
    """Pack `source_dir`; with a requirements.txt, resolve it into wheels for the image's Python first."""
    source = Path(source_dir).resolve()
    if not source.is_dir():
        raise PackagingError(f"{source}: not a folder (--source-dir / source_dir)")
    check_entry_point(source, entry_point)
    staging = Path(tempfile.mkdtemp(prefix="trainstack-pack-", dir=work_dir))
    replace: dict[str, Path] = {}
    wheels: list[Path] = []
    files = source_files(source)
    requirements = files.get(REQUIREMENTS_FILE)
    if requirements is not None:
        check_requirements(requirements)
        if python_version is not None:
            version = _normalise_python_version(python_version)
        elif image_uri is not None:
            version = image_python_version(image_uri)
        else:
            raise PackagingError("requirements.txt needs the image's Python: give image_uri or python_version")
        wheels = download_wheels(requirements, staging / WHEELS_DIR, version)
        replace[REQUIREMENTS_FILE] = offline_requirements(requirements, staging / REQUIREMENTS_FILE)
        replace[f"{REQUIREMENTS_FILE}.orig"] = requirements
        replace.update({f"{WHEELS_DIR}/{wheel.name}": wheel for wheel in wheels})
    tarball = build_source_tarball(source, staging / "sourcedir.tar.gz", replace)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    return SourcePackage(tarball, digest, entry_point, tuple(wheel.name for wheel in wheels))


def upload(s3: Any, package: SourcePackage, bucket: str, kms_key_arn: str | None = None) -> bool:
    """Upload unless the same bytes are already there (HeadObject first). Returns whether it uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=package.key())
        return False
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else None
    s3.upload_file(str(package.tarball), bucket, package.key(), ExtraArgs=extra)
    return True


def discard(package: SourcePackage) -> None:
    """Remove the local staging folder of a package (after upload)."""
    shutil.rmtree(package.tarball.parent, ignore_errors=True)
