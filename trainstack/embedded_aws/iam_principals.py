"""What the IAM enforcement needs from moto's state: who an access key is, and the policies that apply.

An adapter (it reads moto's IAM, STS, S3, KMS and SNS backends; nothing else in trainstack does):
- the dummy credentials (`DUMMY_CREDENTIAL`) are the account's unrestricted caller, as before;
- keys from STS AssumeRole against the embedded endpoint are `arn:aws:sts::<acct>:assumed-role/<role>/<session>`,
  evaluated with the role's inline and managed policies and its permissions boundary;
- an IAM user's access keys are that user, with its policies and boundary;
- sessions of the CDK bootstrap roles (`cdk-hnb659fds-*`, what `cdk deploy` assumes) are the deployer's and,
  like the dummy credentials, not evaluated;
- `service-principal:<service>` keys are an embedded AWS service (Step Functions, SageMaker, EventBridge)
  assuming a role, which the enforcement allows only through the role's trust policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.sts.models import sts_backends

from .iam_policy_evaluation import Policy, Principal
from .json_protocol import DUMMY_CREDENTIAL, SERVICE_CREDENTIAL_PREFIX

_PARTITION = "aws"
CDK_BOOTSTRAP_ROLE_PREFIX = "cdk-hnb659fds-"


@dataclass(frozen=True)
class Caller:
    """A request's principal; `unrestricted` for the account's own dummy credentials (not evaluated)."""

    principal: Principal
    unrestricted: bool = False
    # The IAM role behind a session, or the user: where its policies live.
    entity_arn: str = ""


def _document(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str | bytes) else dict(raw)


class MotoIamState:
    """Reads one account's principals and policies out of moto's backends."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    @property
    def _iam(self) -> Any:
        return iam_backends[self.account][_PARTITION]

    # ---------------------------------------------------------------------------------- callers

    def caller(self, access_key_id: str) -> Caller | None:
        """None for a key the account never issued (AWS: InvalidClientTokenId)."""
        if access_key_id == DUMMY_CREDENTIAL:
            root = f"arn:aws:iam::{self.account}:root"
            return Caller(Principal(root, self.account, (root,)), unrestricted=True, entity_arn=root)
        if access_key_id.startswith(SERVICE_CREDENTIAL_PREFIX):
            service = access_key_id.removeprefix(SERVICE_CREDENTIAL_PREFIX)
            return Caller(Principal(service, "", (), service=service))
        session = sts_backends[self.account][_PARTITION].get_assumed_role_from_access_key(access_key_id)
        if session is not None:
            principal = Principal(session.arn, self.account, (session.arn, session.role_arn))
            # `cdk deploy` works through the bootstrap roles (lookup, deploy, publishing, CloudFormation execution);
            # they are the deployer's, not the platform's, and AWS-managed broad policies govern them: not evaluated.
            bootstrap = session.role_arn.rsplit("/", 1)[-1].startswith(CDK_BOOTSTRAP_ROLE_PREFIX)
            return Caller(principal, unrestricted=bootstrap, entity_arn=session.role_arn)
        try:
            user = self._iam.get_user_from_access_key_id(access_key_id)
        except Exception:  # moto raises its own not-found types
            user = None
        if user is not None:
            return Caller(Principal(user.arn, self.account, (user.arn,)), entity_arn=user.arn)
        return None

    def _entity(self, arn: str) -> Any:
        if ":role/" in arn:
            return self._iam.get_role_by_arn(arn)
        return self._iam.get_user(arn.rsplit("/", 1)[-1])

    def identity_policies(self, entity_arn: str) -> list[Policy]:
        """Inline and attached managed policies of a role or user (the default version of each)."""
        try:
            entity = self._entity(entity_arn)
        except Exception:  # a role deleted while its sessions live: no policies, so nothing is allowed
            return []
        name = entity_arn.rsplit("/", 1)[-1]
        policies = [Policy(f"{name}/{key}", _document(doc)) for key, doc in entity.policies.items()]
        for arn, managed in entity.managed_policies.items():
            default = next(v for v in managed.versions if v.is_default)
            policies.append(Policy(arn, _document(default.document)))
        return policies

    def boundary(self, entity_arn: str) -> Policy | None:
        try:
            entity = self._entity(entity_arn)
        except Exception:
            return None
        arn = getattr(entity, "permissions_boundary_arn", None)
        if not arn:
            return None
        managed = self._iam.get_policy(arn)
        default = next(v for v in managed.versions if v.is_default)
        return Policy(arn, _document(default.document))

    def trust_policy(self, role_arn: str) -> Policy | None:
        """The role's trust policy (who may assume it); None for a role that does not exist."""
        try:
            role = self._iam.get_role_by_arn(role_arn)
        except Exception:  # moto raises its own not-found types
            return None
        return Policy(f"trust policy of {role.name}", _document(role.assume_role_policy_document))

    # ---------------------------------------------------------------------------------- resources

    def bucket_policy(self, bucket: str) -> Policy | None:
        try:
            raw = s3_backends[self.account][_PARTITION].get_bucket(bucket).policy
        except Exception:
            return None
        return Policy(f"bucket policy of {bucket}", _document(raw)) if raw else None

    def bucket_default_kms_key(self, bucket: str) -> str | None:
        try:
            encryption = s3_backends[self.account][_PARTITION].get_bucket(bucket).encryption
        except Exception:
            return None
        default = ((encryption or {}).get("Rule") or {}).get("ApplyServerSideEncryptionByDefault") or {}
        return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm") == "aws:kms" else None

    def object_kms_key(self, bucket: str, key: str) -> str | None:
        try:
            found = s3_backends[self.account][_PARTITION].get_object(bucket, key)
        except Exception:
            return None
        if found is None or getattr(found, "encryption", None) != "aws:kms":
            return None
        return getattr(found, "kms_key_id", None)

    def kms_key(self, key_id: str) -> tuple[str, Policy] | None:
        """The key's ARN and key policy, for an id, ARN, alias name or alias ARN."""
        backend = kms_backends[self.account][self.region]
        try:
            if "alias/" in key_id:
                key_id = backend.get_key_id_from_alias(key_id.split(":")[-1]) or key_id
            key = backend.describe_key(key_id)
        except Exception:
            return None
        return key.arn, Policy(f"key policy of {key.id}", _document(key.policy))

    def topic(self, arn: str) -> tuple[Policy, str] | None:
        """The topic's policy and its KMS key id ('' when not encrypted)."""
        try:
            topic = sns_backends[self.account][self.region].get_topic(arn)
        except Exception:
            return None
        return Policy(f"topic policy of {arn}", _document(topic.policy)), topic.kms_master_key_id or ""
