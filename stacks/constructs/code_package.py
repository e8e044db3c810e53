"""The training code package: a byte-for-byte reproducible `sourcedir.tar.gz` of training_code/.

SageMaker script mode downloads this tarball (`sagemaker_submit_directory`) into /opt/ml/code. CDK
names the asset by the hash of its bytes, so the tarball must not change unless the code does: sorted
entries, fixed mtimes, owners and modes, and a gzip header without a timestamp or file name.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

# Never shipped to a training host: caches, local build output and tests.
EXCLUDED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", ".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# 1980-01-01, the earliest timestamp zip-based tools accept; any constant would do.
_FIXED_MTIME = 315532800


def _included(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(part in EXCLUDED_NAMES for part in parts) and not path.name.endswith(EXCLUDED_SUFFIXES)


def build_source_tarball(source_dir: Path, destination: Path) -> Path:
    """Write `destination` (a .tar.gz) with the files of `source_dir` at the archive root."""
    files = sorted(p for p in source_dir.rglob("*") if p.is_file() and _included(p, source_dir))
    if not files:
        raise ValueError(f"{source_dir}: no files to package")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(source_dir).as_posix())
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


class CodePackage(Construct):
    """Publishes the tarball as a CDK file asset; `.s3_uri` is what jobs get as `sagemaker_submit_directory`."""

    def __init__(self, scope: Construct, construct_id: str, *, source_dir: Path) -> None:
        super().__init__(scope, construct_id)
        staging = Path(tempfile.mkdtemp(prefix="trainstack-code-"))
        tarball = build_source_tarball(source_dir, staging / "sourcedir.tar.gz")
        self.asset = s3_assets.Asset(self, "Asset", path=str(tarball))
        self.s3_uri: str = self.asset.s3_object_url
        self.bucket_name: str = self.asset.s3_bucket_name
        self.object_key: str = self.asset.s3_object_key
