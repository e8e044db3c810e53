"""The training code package: a byte-for-byte reproducible `sourcedir.tar.gz` of training_code/.

SageMaker script mode downloads this tarball (`sagemaker_submit_directory`) into /opt/ml/code. CDK
names the asset by the hash of its bytes, so the tarball must not change unless the code does: sorted
entries, fixed mtimes, owners and modes, and a gzip header without a timestamp or file name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

# The packer is shared with `trainstack run --source-dir` and the notebooks (stdlib only over there).
from trainstack.source_package import build_source_tarball

__all__ = ["CodePackage", "build_source_tarball"]


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
