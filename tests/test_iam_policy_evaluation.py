"""The embedded AWS's IAM evaluator against AWS's documented evaluation examples (each cited)."""

from __future__ import annotations

from typing import Any

import pytest

from trainstack.embedded_aws.iam_policy_evaluation import (
    AuthorizationRequest,
    Policy,
    PolicyKind,
    Principal,
    condition_matches,
    evaluate,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/R"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/R/s"
CALLER = Principal(SESSION, ACCOUNT, (SESSION, ROLE))
USER = Principal(f"arn:aws:iam::{ACCOUNT}:user/carlossalazar", ACCOUNT, (f"arn:aws:iam::{ACCOUNT}:user/carlossalazar",))


def policy(*statements: dict[str, Any], name: str = "p") -> Policy:
    return Policy(name, {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def request(action: str, resource: str, principal: Principal = CALLER, **context: Any) -> AuthorizationRequest:
    return AuthorizationRequest(principal, action, resource, context)


def test_carlos_example_identity_or_resource_policy_in_the_same_account_allows() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
    "Example identity-based and resource-based policy evaluation": Carlos's user policy allows s3:ListBucket
    and reads; the bucket policy allows him PutObject; PutObject is allowed (resource policy), GetObject too
    (identity policy), and DeleteObject nowhere → implicit deny."""
    identity = policy(
        allow(["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"], "arn:aws:s3:::logs/*"),
    )
    bucket = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": USER.arn},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::logs/*",
        }
    )
    put = request("s3:PutObject", "arn:aws:s3:::logs/a", USER)
    assert evaluate(put, [identity], resource_policy=bucket).allowed
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::logs/a", USER), [identity], resource_policy=bucket).allowed
    denied = evaluate(request("s3:DeleteObject", "arn:aws:s3:::logs/a", USER), [identity], resource_policy=bucket)
    assert not denied.allowed and not denied.explicit


def test_explicit_deny_in_any_policy_overrides_an_allow() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    "An explicit deny overrides an explicit allow"; the message names the policy type with the deny."""
    identity = policy(allow("s3:*"), deny("s3:DeleteObject", "arn:aws:s3:::b/*"))
    decision = evaluate(request("s3:DeleteObject", "arn:aws:s3:::b/k"), [identity])
    assert not decision.allowed and decision.explicit and decision.denied_by is PolicyKind.IDENTITY
    assert decision.message(request("s3:DeleteObject", "arn:aws:s3:::b/k")) == (
        f"User: {SESSION} is not authorized to perform: s3:DeleteObject on resource: arn:aws:s3:::b/k "
        "with an explicit deny in an identity-based policy"
    )
    bucket = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"})
    decision = evaluate(request("s3:GetObject", "arn:aws:s3:::b/k"), [identity], resource_policy=bucket)
    assert decision.denied_by is PolicyKind.RESOURCE and decision.explicit


def test_no_allow_is_an_implicit_deny_with_awss_message() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html: "... because no
    identity-based policy allows the <action> action"."""
    req = request("sagemaker:ListTags", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/j")
    decision = evaluate(req, [policy(allow("sagemaker:DescribeTrainingJob"))])
    assert decision.message(req) == (
        f"User: {SESSION} is not authorized to perform: sagemaker:ListTags on resource: "
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/j because no identity-based policy allows the "
        "sagemaker:ListTags action"
    )


def test_permissions_boundary_intersects_identity_policies() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html "Evaluating effective
    permissions with boundaries": the effective permissions are the intersection of the identity-based policy
    and the boundary; a resource-based policy naming the role is also limited by the boundary, one naming the
    session is not."""
    identity = policy(allow(["s3:GetObject", "iam:CreateUser"]))
    boundary = policy(allow(["s3:*", "cloudwatch:*", "ec2:*"]), name="boundary")
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::b/k"), [identity], boundary=boundary).allowed
    decision = evaluate(request("iam:CreateUser", "*"), [identity], boundary=boundary)
    assert not decision.allowed and decision.denied_by is PolicyKind.BOUNDARY
    assert decision.message(request("iam:CreateUser", "*")).endswith(
        "because no permissions boundary allows the iam:CreateUser action"
    )
    to_role = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "sns:Publish", "Resource": "*"})
    to_session = policy({"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "sns:Publish", "Resource": "*"})
    publish = request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t")
    assert not evaluate(publish, [identity], boundary=boundary, resource_policy=to_role).allowed
    assert evaluate(publish, [identity], boundary=boundary, resource_policy=to_session).allowed


def test_kms_key_policy_must_allow_the_account_for_iam_policies_to_count() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam:
    "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key"."""
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    identity = policy(allow("kms:Decrypt", key))
    delegating = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    )
    other = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"}, "Action": "kms:*"})
    decrypt = request("kms:Decrypt", key)
    assert evaluate(decrypt, [identity], resource_policy=delegating, resource_policy_required=True).allowed
    refused = evaluate(decrypt, [identity], resource_policy=other, resource_policy_required=True)
    assert not refused.allowed and refused.denied_by is PolicyKind.RESOURCE
    # Delegation alone grants nothing: the identity policy must allow too.
    assert not evaluate(request("kms:Encrypt", key), [identity], resource_policy=delegating).allowed


def test_actions_ignore_case_resources_do_not_and_wildcards_span_path_separators() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html (action names are
    case-insensitive) and reference_policies_elements_resource.html ("*" and "?" wildcards, case-sensitive ARNs)."""
    identity = policy(allow("S3:getobject", "arn:aws:s3:::b/output/*"), allow("s3:PutObject", "arn:aws:s3:::b/k?"))
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::b/output/job/model.tar.gz"), [identity]).allowed
    assert not evaluate(request("s3:GetObject", "arn:aws:s3:::b/Output/x"), [identity]).allowed
    assert evaluate(request("s3:PutObject", "arn:aws:s3:::b/k1"), [identity]).allowed
    assert not evaluate(request("s3:PutObject", "arn:aws:s3:::b/k12"), [identity]).allowed


def test_not_action_and_not_resource() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html: "Allow with
    NotAction" grants every action but the listed; NotResource (reference_policies_elements_notresource.html)
    every resource but the listed."""
    identity = policy(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::hr", "arn:aws:s3:::hr/*"]},
    )
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::hr/x"), [identity]).allowed
    assert not evaluate(request("s3:GetObject", "arn:aws:s3:::other/x"), [identity]).allowed
    assert not evaluate(request("iam:PassRole", ROLE), [identity]).allowed


def test_tls_only_bucket_policy_denies_insecure_transport() -> None:
    """https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html (deny when
    aws:SecureTransport is false), the statement CDK's enforceSSL writes on every platform bucket."""
    bucket = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    identity = policy(allow("s3:GetObject"))
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::b/k", **{"aws:SecureTransport": True}), [identity],
                    resource_policy=bucket).allowed  # fmt: skip
    refused = evaluate(request("s3:GetObject", "arn:aws:s3:::b/k", **{"aws:SecureTransport": False}), [identity],
                       resource_policy=bucket)  # fmt: skip
    assert not refused.allowed and refused.explicit and refused.denied_by is PolicyKind.RESOURCE


def test_pass_role_only_to_sagemaker() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html: iam:PassedToService limits
    which service a role may be passed to."""
    identity = policy(
        allow("iam:PassRole", ROLE, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    )
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert evaluate(request("iam:PassRole", ROLE, **passed), [identity]).allowed
    assert not evaluate(
        request("iam:PassRole", ROLE, **{"iam:PassedToService": "ec2.amazonaws.com"}), [identity]
    ).allowed
    assert not evaluate(request("iam:PassRole", ROLE), [identity]).allowed


# --- condition operators: reference_policies_elements_condition_operators.html ------------------------------


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        # String: "StringEquals ... Exact matching, case sensitive"; IgnoreCase; Like with * and ?.
        ({"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
         {"aws:PrincipalTag/job-category": "iamuser-admin"}, True),
        ({"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
         {"aws:PrincipalTag/job-category": "IAMUSER-ADMIN"}, False),
        ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
         {"aws:PrincipalTag/job-category": "IAMUSER-ADMIN"}, True),
        ({"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}},
         {"s3:prefix": "home/carlos/notes", "aws:username": "carlos"}, True),
        ({"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}},
         {"s3:prefix": "home/maria/notes", "aws:username": "carlos"}, False),
        # Condition key names are case-insensitive.
        ({"StringEquals": {"AWS:PrincipalTag/Team": "ml"}}, {"aws:principaltag/Team": "ml"}, True),
        # "If the key that you specify in a policy condition is not present in the request context, the values
        # do not match and the condition is false. If the policy condition requires that the key is not matched,
        # such as StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
        ({"StringEquals": {"sagemaker:VolumeKmsKey": "k"}}, {}, False),
        ({"StringNotEquals": {"sagemaker:VolumeKmsKey": "k"}}, {}, True),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin"}}, {}, True),
        ({"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:k1"}},
         {"s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:k2"}, True),
        # Numeric: sagemaker:MaxRuntimeInSeconds / KeepAlivePeriod style caps.
        ({"NumericLessThanEquals": {"sagemaker:KeepAlivePeriod": "1800"}}, {"sagemaker:KeepAlivePeriod": 3600}, False),
        ({"NumericLessThanEquals": {"sagemaker:KeepAlivePeriod": "1800"}}, {"sagemaker:KeepAlivePeriod": 600}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, True),
        ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}, False),
        # Bool, and "...IfExists": "If the policy key is present in the context of the request, process the key
        # as specified in the policy. If the key is not present, evaluate the condition element as true."
        ({"Bool": {"sagemaker:NetworkIsolation": "true"}}, {"sagemaker:NetworkIsolation": True}, True),
        ({"Bool": {"sagemaker:NetworkIsolation": "true"}}, {}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}, True),
        ({"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*"]}}, {"ec2:InstanceType": "m5.large"}, False),
        # Null: "true" = the key is absent.
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}, False),
        ({"Null": {"sagemaker:VolumeKmsKey": "false"}}, {"sagemaker:VolumeKmsKey": "arn:k"}, True),
        # ARN operators match each colon-separated part.
        ({"ArnLike": {"aws:SourceArn": "arn:aws:states:*:123456789012:stateMachine:*"}},
         {"aws:SourceArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}, True),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:states:*:123456789012:stateMachine:*"}},
         {"aws:SourceArn": "arn:aws:states:us-east-1:999999999999:stateMachine:m"}, False),
        # Several operators AND, several keys AND, several values OR.
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
        ({"StringEquals": {"a": ["1", "2"]}, "Bool": {"c": "true"}}, {"a": "2", "c": "true"}, True),
    ],
)  # fmt: skip
def test_condition_operators(block: dict, context: dict, expected: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    (examples per operator family; the missing-key rule in the "Important" note)."""
    assert condition_matches(block, context) is expected


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        # ForAllValues: every request value is in the policy's set; true when the key is missing or empty.
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}},
         {"aws:TagKeys": ["environment"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}},
         {"aws:TagKeys": ["environment", "owner"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["environment"]}}, {}, True),
        # ForAnyValue: at least one request value matches; false when the key is missing.
        ({"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": ["ml.p4d.24xlarge"]}},
         {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p4d.24xlarge"]}, True),
        ({"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": ["ml.p4d.24xlarge"]}}, {}, False),
        # Negated with a set qualifier: ForAllValues:StringNotLike — no request value may match.
        ({"ForAllValues:StringNotLike": {"sagemaker:InstanceTypes": ["ml.p*"]}},
         {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.g5.xlarge"]}, True),
        ({"ForAllValues:StringNotLike": {"sagemaker:InstanceTypes": ["ml.p*"]}},
         {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p5.48xlarge"]}, False),
        # Multi-valued key without a qualifier: any value; negated: none.
        ({"StringLike": {"sagemaker:InstanceTypes": "ml.m5.*"}}, {"sagemaker:InstanceTypes": ["ml.m5.large"]}, True),
        ({"StringNotLike": {"sagemaker:InstanceTypes": "ml.p*"}},
         {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p4d.24xlarge"]}, False),
    ],
)  # fmt: skip
def test_multivalued_context_keys(block: dict, context: dict, expected: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    and reference_policies_multi-value-conditions.html (ForAllValues / ForAnyValue examples with aws:TagKeys)."""
    assert condition_matches(block, context) is expected


def test_an_operator_the_evaluator_does_not_know_is_refused_loudly() -> None:
    """An unknown operator must not be silently treated as a match or a miss."""
    with pytest.raises(ValueError, match="DateGreaterThan"):
        condition_matches({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:CurrentTime": "x"})


def test_create_training_job_condition_keys_come_from_the_request() -> None:
    """Key names as the Service Authorization Reference lists them for sagemaker:CreateTrainingJob; absent
    fields give absent keys, so `Null` and `...IfExists` guard rails behave as on AWS."""
    from trainstack.embedded_aws.sagemaker_condition_keys import create_training_job_context

    request = {
        "ResourceConfig": {
            "InstanceType": "ml.p4d.24xlarge",
            "InstanceCount": 2,
            "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/v",
            "KeepAlivePeriodInSeconds": 600,
        },
        "VpcConfig": {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o", "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/o"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 172800},
        "EnableInterContainerTrafficEncryption": True,
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    assert create_training_job_context(request) == {
        "sagemaker:InstanceTypes": ["ml.p4d.24xlarge"],
        "sagemaker:VpcSubnets": ["subnet-1", "subnet-2"],
        "sagemaker:VpcSecurityGroupIds": ["sg-1"],
        "sagemaker:VolumeKmsKey": "arn:aws:kms:us-east-1:123456789012:key/v",
        "sagemaker:OutputKmsKey": "arn:aws:kms:us-east-1:123456789012:key/o",
        "sagemaker:InterContainerTrafficEncryption": True,
        "sagemaker:NetworkIsolation": False,
        "sagemaker:MaxRuntimeInSeconds": 172800,
        "sagemaker:KeepAlivePeriod": 600,
        "aws:RequestTag/team": "ml",
        "aws:TagKeys": ["team"],
    }
    bare = create_training_job_context({"ResourceConfig": {"InstanceType": "ml.m5.large"}})
    assert condition_matches({"Null": {"sagemaker:VolumeKmsKey": "true"}}, bare)
    assert not condition_matches({"Null": {"sagemaker:VolumeKmsKey": "true"}}, create_training_job_context(request))


def test_update_training_job_condition_keys_come_from_the_request() -> None:
    """UpdateTrainingJob's keys (Service Authorization Reference): a keep-alive change and remote debugging."""
    from trainstack.embedded_aws.sagemaker_condition_keys import update_training_job_context

    assert update_training_job_context(
        {
            "TrainingJobName": "j",
            "ResourceConfig": {"KeepAlivePeriodInSeconds": 0},
            "RemoteDebugConfig": {"EnableRemoteDebug": True},
        }
    ) == {"sagemaker:KeepAlivePeriod": 0, "sagemaker:EnableRemoteDebug": True}
    assert update_training_job_context({"TrainingJobName": "j"}) == {}


SAGEMAKER_SERVICE = Principal("sagemaker.amazonaws.com", "", (), service="sagemaker.amazonaws.com")


def _trust(**condition: Any) -> Policy:
    statement = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    return policy({**statement, **({"Condition": condition} if condition else {})}, name="trust")


def test_a_trust_policy_naming_a_service_lets_that_service_alone_assume_the_role() -> None:
    assume = request("sts:AssumeRole", ROLE, SAGEMAKER_SERVICE)
    assert evaluate(assume, [], resource_policy=_trust(), resource_policy_required=True).allowed
    states = Principal("states.amazonaws.com", "", (), service="states.amazonaws.com")
    assert not evaluate(
        request("sts:AssumeRole", ROLE, states), [], resource_policy=_trust(), resource_policy_required=True
    ).allowed
    # An IAM principal of the account, even with every identity permission, is not the service.
    everything = policy(allow("*"))
    assert not evaluate(
        request("sts:AssumeRole", ROLE), [everything], resource_policy=_trust(), resource_policy_required=True
    ).allowed
    # And a trust policy naming the account does not let a service in.
    account = policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"})
    assert not evaluate(assume, [], resource_policy=account, resource_policy_required=True).allowed


def test_a_trust_policys_source_arn_condition_binds_the_service_to_one_resource() -> None:
    job = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/trainstack-*"
    trust = _trust(ArnLike={"aws:SourceArn": job})
    ours = request("sts:AssumeRole", ROLE, SAGEMAKER_SERVICE, **{"aws:SourceArn": job.replace("*", "run-1")})
    other = request("sts:AssumeRole", ROLE, SAGEMAKER_SERVICE, **{"aws:SourceArn": job.replace("trainstack-*", "x")})
    unsourced = request("sts:AssumeRole", ROLE, SAGEMAKER_SERVICE)
    assert evaluate(ours, [], resource_policy=trust, resource_policy_required=True).allowed
    assert not evaluate(other, [], resource_policy=trust, resource_policy_required=True).allowed
    assert not evaluate(unsourced, [], resource_policy=trust, resource_policy_required=True).allowed
