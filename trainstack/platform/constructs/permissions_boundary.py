"""The platform's permissions boundary: the ceiling on every role of an environment deployed to an account.

An organisation that has its own boundary names it (`permissions_boundary_arn`); otherwise the platform brings
one, so no environment in an account runs roles without a ceiling. The boundary allows exactly the actions the
platform's roles use (their identity policies stay the place where resources and conditions are scoped), and
denies changing IAM, the organisation or the account: a role that gained a broader policy later (a console edit,
another stack) still cannot do more than the platform needs, nor remove its own boundary.
`tests/test_permissions_boundary.py` checks that every action of every role's policy is inside this list, so a
new grant without its boundary entry fails the suite instead of failing at run time on AWS.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from trainstack.config import EnvironmentConfig
from trainstack.platform.nag import acknowledge

# Per service, the actions the platform's roles (execution, notebook, state machine, flow logs, and CDK's
# AwsCustomResource provider that makes the training log group) call.
BOUNDARY_ACTIONS: dict[str, list[str]] = {
    "s3": [
        "GetObject",
        "GetObjectVersion",
        "PutObject",
        "DeleteObject",
        "AbortMultipartUpload",
        "ListBucket",
        "GetBucketLocation",
    ],
    "kms": ["Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey", "CreateGrant"],
    "sagemaker": [
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "StopTrainingJob",
        "UpdateTrainingJob",
        "AddTags",
        "ListTags",
        "ListTrainingJobs",
        "DescribeNotebookInstance",
        "StopNotebookInstance",
    ],
    "ecr": ["GetAuthorizationToken", "BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability"],
    "logs": [
        "CreateLogGroup",
        "AssociateKmsKey",
        "PutRetentionPolicy",
        "CreateLogStream",
        "PutLogEvents",
        "DescribeLogStreams",
        "DescribeLogGroups",
        "GetLogEvents",
        "FilterLogEvents",
        "CreateLogDelivery",
        "GetLogDelivery",
        "UpdateLogDelivery",
        "DeleteLogDelivery",
        "ListLogDeliveries",
        "PutResourcePolicy",
        "DescribeResourcePolicies",
    ],
    "cloudwatch": ["PutMetricData"],
    "ec2": [
        "CreateNetworkInterface",
        "CreateNetworkInterfacePermission",
        "DeleteNetworkInterface",
        "DeleteNetworkInterfacePermission",
        "DescribeNetworkInterfaces",
        "DescribeVpcs",
        "DescribeDhcpOptions",
        "DescribeSubnets",
        "DescribeSecurityGroups",
    ],
    "states": ["StartExecution", "ListExecutions", "DescribeExecution", "GetExecutionHistory", "StopExecution"],
    "events": ["PutTargets", "PutRule", "DescribeRule"],
    "sns": ["Publish"],
    "servicequotas": ["GetServiceQuota", "GetAWSDefaultServiceQuota", "ListServiceQuotas"],
    "xray": ["PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets"],
    "iam": ["PassRole"],
}
# Never from a platform role, whatever else it is given.
DENIED_ACTIONS = [
    *(f"iam:{verb}*" for verb in ("Add", "Attach", "Create", "Delete", "Detach", "Put", "Remove", "Set", "Tag")),
    *(f"iam:{verb}*" for verb in ("Untag", "Update", "Upload")),
    "organizations:*",
    "account:*",
]


def boundary_actions() -> list[str]:
    return [f"{service}:{action}" for service, actions in BOUNDARY_ACTIONS.items() for action in actions]


class PlatformPermissionsBoundary(iam.ManagedPolicy):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            managed_policy_name=f"{config.prefix}-permissions-boundary",
            description=f"trainstack {config.name}: ceiling on every role the platform creates",
            statements=[
                iam.PolicyStatement(sid="WhatThePlatformsRolesDo", actions=boundary_actions(), resources=["*"]),
                iam.PolicyStatement(
                    sid="NoIamOrganizationOrAccountChanges",
                    effect=iam.Effect.DENY,
                    actions=DENIED_ACTIONS,
                    resources=["*"],
                ),
            ],
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "A permissions boundary is a ceiling of actions; the roles' own policies scope every resource.",
        )
