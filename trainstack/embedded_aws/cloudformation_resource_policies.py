"""Gap: moto's CloudFormation has no `AWS::S3::BucketPolicy` nor `AWS::SNS::TopicPolicy` (it logs "No Moto
CloudFormation support" and creates nothing), so the TLS-only bucket policies, the access-log bucket's
delivery policy and the topic's TLS-only policy never exist locally.

We register CloudFormation models for both that store the policy where moto's S3 and SNS keep it
(`put_bucket_policy`, the topic's `Policy` attribute); the IAM enforcement (`iam_enforcement.py`) then
evaluates them as resource policies. Delete removes the bucket policy / restores moto's default topic policy.

Once a bucket has a policy, moto's S3 checks it itself, ignoring every Condition: the TLS-only statement
(Deny s3:* when aws:SecureTransport is false) then refuses every object request, `cdk deploy`'s included. We
turn that check off; the IAM enforcement evaluates bucket policies with their conditions instead (for roles
and users; the account's dummy keys are not evaluated at all).
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.iam.access_control import PermissionResult
from moto.s3.models import FakeBucket, s3_backends
from moto.sns.models import sns_backends


def _document(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


class _PolicyResource:
    """A policy attached to other resources: no name of its own; an update is a re-create (the policy replaced).

    A mixin, not a CloudFormationModel subclass: moto finds resource types among that class's direct
    subclasses only."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        return cls.create_from_cloudformation_json(  # type: ignore[attr-defined]
            new_resource_name, cloudformation_json, account_id, region_name
        )


class BucketPolicy(_PolicyResource, CloudFormationModel):
    def __init__(self, bucket: str, account_id: str) -> None:
        self.bucket = bucket
        self.account_id = account_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicy:
        properties = cloudformation_json["Properties"]
        bucket = properties["Bucket"]
        s3_backends[account_id]["aws"].put_bucket_policy(bucket, _document(properties["PolicyDocument"]).encode())
        return cls(bucket, account_id)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        s3_backends[account_id]["aws"].delete_bucket_policy(cloudformation_json["Properties"]["Bucket"])


class TopicPolicy(_PolicyResource, CloudFormationModel):
    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @property
    def physical_resource_id(self) -> str:
        return ",".join(self.topics)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> TopicPolicy:
        properties = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        for topic in properties["Topics"]:
            backend.get_topic(topic).policy = _document(properties["PolicyDocument"])
        return cls(list(properties["Topics"]))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        backend = sns_backends[account_id][region_name]
        for topic in cloudformation_json["Properties"]["Topics"]:
            found = backend.get_topic(topic)
            found.policy = json.dumps(found._create_default_topic_policy(region_name, account_id, found.name))


def _no_condition_blind_check(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    return PermissionResult.NEUTRAL


def apply() -> None:
    FakeBucket.get_permission = _no_condition_blind_check  # type: ignore[method-assign]
    # moto builds its type map from CloudFormationModel.__subclasses__() once (lru_cache): rebuild it.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
