"""The training log group, `/aws/sagemaker/TrainingJobs`, made by `cdk deploy`: platform key and retention.

SageMaker writes every training job's logs into this one group per account and region, and creates it, without
encryption and kept forever, when it is absent. An `AWS::Logs::LogGroup` cannot own it: CloudFormation fails
when the group already exists (it does in any account that ever ran a training job). So three `AwsCustomResource`
SDK calls (CDK's provider Lambda, one per stack, made as its own role) do what the group needs, on create and on
every update of their properties:

1. CreateLogGroup with the platform key; ResourceAlreadyExistsException is ignored (the group predates us).
2. AssociateKmsKey: the platform key, whether the group was just made or was SageMaker's unencrypted one.
   AssociateKmsKey encrypts data ingested from then on; events already in the group stay as they were.
3. PutRetentionPolicy: the configured retention.

On delete (stack removed, or the environment's key replaced) nothing is called: the group is the account's,
other environments and SageMaker itself write to it, and the platform key is retained (`RemovalPolicy.RETAIN`),
so the logs stay readable. The execution role has no `logs:CreateLogGroup`, so a job cannot recreate the group
unencrypted if someone deletes it; its logs are refused until the next deploy (which re-creates it only when a
property changed: `make deploy` of an unchanged stack is a no-op, like any CloudFormation resource).

Two environments in one account and region share this group; the last deployed sets its key and retention.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from trainstack.config import ResourceNames
from trainstack.platform.nag import acknowledge

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class TrainingLogGroupProps:
    """What `TrainingLogGroup` reads; no environment config needed."""

    names: ResourceNames
    """The account, region and partition the group's ARN is in (`ResourceNames(prefix=, account=, region=)`).
    Required."""
    key: kms.IKey
    """The KMS key the group encrypts new log events with. Required."""
    retention_days: int = 365
    """How long the group keeps events: a CloudWatch Logs retention period. Default: 365."""


class TrainingLogGroup(Construct):
    """Exposes `.log_group_arn`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TrainingLogGroupProps) -> None:
        super().__init__(scope, construct_id)
        names, key, retention_days = props.names, props.key, props.retention_days
        group = {"logGroupName": TRAINING_LOG_GROUP}
        physical_id = cr.PhysicalResourceId.of(TRAINING_LOG_GROUP)
        # CloudWatch Logs checks permissions on the log group's ARN both with and without the `:*` suffix
        # depending on the action; both name this one group only.
        group_arns = [
            names.arn("logs", f"log-group:{TRAINING_LOG_GROUP}"),
            names.arn("logs", f"log-group:{TRAINING_LOG_GROUP}:*"),
        ]
        calls = {
            "Create": ("CreateLogGroup", {**group, "kmsKeyId": key.key_arn}, "ResourceAlreadyExistsException"),
            "Key": ("AssociateKmsKey", {**group, "kmsKeyId": key.key_arn}, None),
            "Retention": ("PutRetentionPolicy", {**group, "retentionInDays": retention_days}, None),
        }
        previous: cr.AwsCustomResource | None = None
        for name, (action, parameters, ignored) in calls.items():
            call = cr.AwsSdkCall(
                service="@aws-sdk/client-cloudwatch-logs",
                action=action,
                parameters=parameters,
                physical_resource_id=physical_id,
                ignore_error_codes_matching=ignored,
            )
            resource = cr.AwsCustomResource(
                self,
                name,
                on_create=call,
                on_update=call,
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [iam.PolicyStatement(actions=[f"logs:{action}"], resources=group_arns)]
                ),
                install_latest_aws_sdk=False,
            )
            acknowledge(
                resource,
                f"AwsSolutions-IAM5[Resource::{group_arns[1]}]",
                "The `:*` form of the one training log group's ARN, which CloudWatch Logs evaluates for some "
                "log-group actions; no other group matches it.",
            )
            if previous is not None:
                resource.node.add_dependency(previous)
            previous = resource
        self.log_group_arn = group_arns[0]


def acknowledge_provider(stack_scope: Construct) -> None:
    """cdk-nag's findings on CDK's AwsCustomResource provider (one singleton Lambda per stack), each for a
    reason; called once for the stack that holds a `TrainingLogGroup`."""
    provider_id = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
    provider = stack_scope.node.try_find_child(provider_id)
    if provider is None:
        return
    acknowledge(
        provider,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource provider writes its own logs with AWS's basic execution policy; its calls are "
        "scoped by the statements of each resource (logs actions on the training log group only).",
    )
