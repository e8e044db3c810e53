"""An S3 bucket with the platform's non-negotiable defaults; callers add only what differs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


@dataclass(frozen=True)
class SecureBucketProps:
    """What `secure_bucket` reads; no environment config needed."""

    bucket_name: str
    """The bucket's physical name. Required."""
    encryption_key: kms.IKey | None
    """The KMS key every object must be encrypted with. Required; None gives S3-managed encryption, for an
    access-log bucket only (S3 cannot deliver server access logs to a KMS-encrypted bucket)."""
    access_log_bucket: s3.IBucket | None
    """Where S3 writes this bucket's server access logs. Required; None for the access-log bucket itself."""
    access_log_prefix: str = ""
    """The key prefix of this bucket's access logs. Default: "" (the log bucket's root)."""
    lifecycle_rules: tuple[s3.LifecycleRule, ...] = ()
    """Rules besides the two every bucket gets (incomplete uploads, noncurrent versions). Default: none."""
    incomplete_upload_expiry_days: int = 7
    """Days before an incomplete multipart upload is aborted. Default: 7."""
    noncurrent_version_expiry_days: int = 30
    """Days a noncurrent object version is kept. Default: 30."""


def secure_bucket(scope: Construct, construct_id: str, props: SecureBucketProps) -> s3.Bucket:
    """TLS 1.2+ only, no public access, versioned, retained on stack deletion, KMS (or S3-managed for logs).

    S3 server access logs cannot be delivered to a KMS-encrypted bucket, so the access-log bucket passes
    `encryption_key=None` and gets S3-managed encryption instead. A KMS bucket refuses objects written
    under any other key or encryption; a PutObject without encryption headers gets the bucket's default,
    the platform key (the documented pattern: the conditions are `...IfExists`).
    """
    encryption_key = props.encryption_key
    rules = [
        s3.LifecycleRule(
            id="expire-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload_after=Duration.days(props.incomplete_upload_expiry_days),
        ),
        s3.LifecycleRule(
            id="expire-noncurrent-versions",
            noncurrent_version_expiration=Duration.days(props.noncurrent_version_expiry_days),
        ),
        *props.lifecycle_rules,
    ]
    bucket = s3.Bucket(
        scope,
        construct_id,
        bucket_name=props.bucket_name,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=encryption_key is not None,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        server_access_logs_bucket=props.access_log_bucket,
        server_access_logs_prefix=props.access_log_prefix or None,
        lifecycle_rules=rules,
        # Datasets, weights and trained models outlive any stack: deleting a stack must never delete them.
        removal_policy=RemovalPolicy.RETAIN,
        auto_delete_objects=False,
    )
    for statement in _bucket_guard_rails(bucket, encryption_key):
        bucket.add_to_resource_policy(statement)
    return bucket


def _bucket_guard_rails(bucket: s3.IBucket, encryption_key: kms.IKey | None) -> list[iam.PolicyStatement]:
    objects = bucket.arn_for_objects("*")
    statements = [
        # enforce_ssl refuses plain HTTP; this refuses TLS 1.0 and 1.1 as well.
        iam.PolicyStatement(
            sid="DenyTlsBelow12",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=[bucket.bucket_arn, objects],
            conditions={"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        )
    ]
    if encryption_key is not None:
        statements += [
            # A negated operator is true when the key is absent (IAM's rule, and `...IfExists` too), so each
            # deny names its key with `Null: false`: a request without encryption headers gets the bucket's
            # default, the platform key, and is allowed.
            iam.PolicyStatement(
                sid="DenyOtherEncryption",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[objects],
                conditions={
                    "Null": {"s3:x-amz-server-side-encryption": "false"},
                    "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                },
            ),
            iam.PolicyStatement(
                sid="DenyOtherKmsKeys",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[objects],
                conditions={
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                    "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": encryption_key.key_arn},
                },
            ),
            # `aws:kms` without a key id means the AWS managed key aws/s3 (PutObject API reference), not the
            # bucket default: name the platform key, or send no encryption header at all.
            iam.PolicyStatement(
                sid="DenyAwsManagedKey",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[objects],
                conditions={
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            ),
        ]
    return statements
