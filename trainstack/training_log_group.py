"""The training log group, `/aws/sagemaker/TrainingJobs`: encrypted with the platform key, with a retention.

SageMaker writes every training job's logs into this one group per account and region, and creates it, without
encryption and kept forever, when it is absent. Making it ours at deploy time has three options:

- `AWS::Logs::LogGroup` in a stack: CloudFormation fails when the group already exists (it does in any account
  that ever ran a training job), and a second environment in the same account could not own it either.
- A custom resource (CDK `AwsCustomResource`): a Lambda function the platform would deploy and keep patched only
  for this; the platform runs no Lambda, and cdk-nag would flag its runtime and managed policy.
- A deploy-time step (this module): `make deploy` runs it after `cdk deploy`, the embedded deployment runs it
  too (`trainstack.local_platform.deploy`). It creates the group with the key when absent, otherwise associates
  the key; then sets the retention. Idempotent, so every deploy re-asserts it.

The execution role has no `logs:CreateLogGroup`, so a job cannot recreate the group unencrypted if it is ever
deleted: its logs are refused instead until the next deploy. The key policy lets CloudWatch Logs use the key for
this account's log groups (`stacks/storage_stack.py`). AssociateKmsKey encrypts data ingested from then on;
events already in an existing group stay as they were.

    python -m trainstack.training_log_group ENV    # with the account's credentials (AWS_ENDPOINT_URL honoured)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import boto3

from trainstack.config import ConfigError, EnvironmentConfig, load_environment

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def platform_key_arn(kms: Any, config: EnvironmentConfig) -> str:
    """The platform key's ARN, found by its alias (`alias/<prefix>`, created by the storage stack)."""
    return kms.describe_key(KeyId=f"alias/{config.prefix}")["KeyMetadata"]["Arn"]


def ensure_training_log_group(
    logs: Any, key_arn: str, retention_days: int, name: str = TRAINING_LOG_GROUP
) -> list[str]:
    """Make the training log group encrypted with `key_arn` and kept `retention_days`; returns what it changed."""
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    changed = []
    if not found:
        try:
            logs.create_log_group(logGroupName=name, kmsKeyId=key_arn)
            changed.append("created with the platform key")
        except logs.exceptions.ResourceAlreadyExistsException:
            # A job created it between the two calls: fall through to associating the key.
            found = [{"logGroupName": name}]
    if found and found[0].get("kmsKeyId") != key_arn:
        logs.associate_kms_key(logGroupName=name, kmsKeyId=key_arn)
        changed.append("platform key associated")
    if not found or found[0].get("retentionInDays") != retention_days:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        changed.append(f"retention {retention_days} days")
    return changed


def ensure_for_environment(config: EnvironmentConfig, client: Callable[[str], Any]) -> list[str]:
    """`client(service)` gives a boto3 client in the environment's account and region."""
    key_arn = platform_key_arn(client("kms"), config)
    return ensure_training_log_group(client("logs"), key_arn, config.training.log_retention_days)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m trainstack.training_log_group ENV", file=sys.stderr)
        return 2
    try:
        config = load_environment(argv[0])
    except ConfigError as error:
        print(f"trainstack: {error}", file=sys.stderr)
        return 1
    changed = ensure_for_environment(config, lambda service: boto3.client(service, region_name=config.region))
    print(f"{TRAINING_LOG_GROUP}: {', '.join(changed) or 'already encrypted with the platform key and retained'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
