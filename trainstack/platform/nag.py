"""cdk-nag acknowledgments, always one finding on one construct with a reason a reviewer can check."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge `finding` (e.g. "AwsSolutions-IAM5[Resource::*]") on `scope` and its children only."""
    if not finding.startswith("AwsSolutions-"):
        raise ValueError(f"finding must be a single AwsSolutions rule id, got {finding!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))
