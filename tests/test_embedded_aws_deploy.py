"""The synthesized `local` stacks deploy with the real CDK CLI into the embedded AWS, and every resource
CloudFormation reports can be found through its own service's API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# Resource types moto 5.2.5's CloudFormation skips (it warns "not supported" and creates nothing). Listed so
# that a new unsupported type in our stacks, or moto starting to support one, fails this test.
# These matter (alarms, e-mail subscriptions): see the README's list of
# differences. Add an adapter before removing one from here.
NOT_CREATED_BY_MOTO = {
    "AWS::CDK::Metadata",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
}

# Created, but not as on AWS: the finder is expected to fail until moto (or an adapter) fixes it.
KNOWN_BROKEN = {
    "AWS::EC2::SubnetRouteTableAssociation": "moto answers with the route table id and associates no subnet",
}


def _shape(document: dict) -> list[tuple]:
    """Effect and actions of each statement (the template's ARNs are still unresolved intrinsics)."""
    return [(s["Effect"], json.dumps(s["Action"], sort_keys=True)) for s in document["Statement"]]


def _finders(aws: Any, physical_of: Callable[[Any], str]) -> dict[str, Callable[[str, dict], Any]]:
    """Resource type -> a call (physical id, properties) that fails unless the resource exists in its service."""
    s3, kms, ec2, iam = aws.client("s3"), aws.client("kms"), aws.client("ec2"), aws.client("iam")
    sagemaker, logs, sfn = aws.client("sagemaker"), aws.client("logs"), aws.client("stepfunctions")

    def found(condition: bool) -> None:
        assert condition

    def notebook_name(physical: str) -> str:
        return physical.rsplit("/", 1)[-1]

    def inline_policy(_: str, properties: dict) -> None:
        # moto puts the policy on each role under its PolicyName; the physical id is a made-up name.
        for role in properties.get("Roles", []):
            found(properties["PolicyName"] in iam.list_role_policies(RoleName=physical_of(role))["PolicyNames"])

    def bucket_policy(_: str, properties: dict) -> None:
        # cloudformation_resource_policies.py stores it where S3 keeps it, so IAM evaluation sees it.
        stored = json.loads(s3.get_bucket_policy(Bucket=physical_of(properties["Bucket"]))["Policy"])
        found(_shape(stored) == _shape(properties["PolicyDocument"]))

    def topic_policy(_: str, properties: dict) -> None:
        for topic in properties["Topics"]:
            attributes = aws.client("sns").get_topic_attributes(TopicArn=physical_of(topic))["Attributes"]
            found(_shape(json.loads(attributes["Policy"])) == _shape(properties["PolicyDocument"]))

    def ingress(_: str, properties: dict) -> None:
        group = ec2.describe_security_groups(GroupIds=[physical_of(properties["GroupId"])])["SecurityGroups"][0]
        found(bool(group["IpPermissions"]))

    def association(route_table: str, properties: dict) -> None:
        # moto reports the route table id as the association's physical id.
        table = ec2.describe_route_tables(RouteTableIds=[route_table])["RouteTables"][0]
        subnets = [item.get("SubnetId") for item in table["Associations"]]
        assert physical_of(properties["SubnetId"]) in subnets, (properties, table)

    return {
        "AWS::S3::Bucket": lambda pid, _: s3.head_bucket(Bucket=pid),
        "AWS::S3::BucketPolicy": bucket_policy,
        "AWS::SNS::TopicPolicy": topic_policy,
        "AWS::KMS::Key": lambda pid, _: kms.describe_key(KeyId=pid),
        "AWS::KMS::Alias": lambda pid, _: found(pid in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]),
        "AWS::EC2::VPC": lambda pid, _: ec2.describe_vpcs(VpcIds=[pid]),
        "AWS::EC2::Subnet": lambda pid, _: ec2.describe_subnets(SubnetIds=[pid]),
        "AWS::EC2::RouteTable": lambda pid, _: ec2.describe_route_tables(RouteTableIds=[pid]),
        "AWS::EC2::SubnetRouteTableAssociation": association,
        "AWS::EC2::SecurityGroup": lambda pid, _: ec2.describe_security_groups(GroupIds=[pid]),
        "AWS::EC2::SecurityGroupIngress": ingress,
        "AWS::EC2::VPCEndpoint": lambda pid, _: ec2.describe_vpc_endpoints(VpcEndpointIds=[pid]),
        "AWS::EC2::FlowLog": lambda pid, _: found(bool(ec2.describe_flow_logs(FlowLogIds=[pid])["FlowLogs"])),
        "AWS::ECR::Repository": lambda pid, _: aws.client("ecr").describe_repositories(repositoryNames=[pid]),
        "AWS::IAM::Role": lambda pid, _: iam.get_role(RoleName=pid),
        "AWS::IAM::Policy": inline_policy,
        "AWS::IAM::ManagedPolicy": lambda pid, _: iam.get_policy(PolicyArn=pid),
        "AWS::Logs::LogGroup": lambda pid, _: found(
            pid in [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=pid)["logGroups"]]
        ),
        "AWS::SageMaker::NotebookInstance": lambda pid, _: sagemaker.describe_notebook_instance(
            NotebookInstanceName=notebook_name(pid)
        ),
        "AWS::SageMaker::NotebookInstanceLifecycleConfig": lambda pid, _: (
            sagemaker.describe_notebook_instance_lifecycle_config(
                NotebookInstanceLifecycleConfigName=notebook_name(pid)
            )
        ),
        "AWS::Lambda::Function": lambda pid, _: aws.client("lambda").get_function(FunctionName=pid),
        # The platform's only AwsCustomResource calls make the training log group; their physical id is its name.
        "Custom::AWS": lambda pid, _: found(
            pid in [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=pid)["logGroups"]]
        ),
        "AWS::StepFunctions::StateMachine": lambda pid, _: sfn.describe_state_machine(stateMachineArn=pid),
        "AWS::SNS::Topic": lambda pid, _: aws.client("sns").get_topic_attributes(TopicArn=pid),
        "AWS::SSM::Parameter": lambda pid, _: aws.client("ssm").get_parameter(Name=pid),
        "AWS::CloudWatch::Alarm": lambda pid, _: found(
            bool(aws.client("cloudwatch").describe_alarms(AlarmNames=[pid])["MetricAlarms"])
        ),
        "AWS::Events::Rule": lambda pid, _: aws.client("events").describe_rule(Name=pid.split("|")[-1]),
        # Found by its name: the body, with its references resolved, is what CloudWatch stores.
        "AWS::CloudWatch::Dashboard": lambda _, properties: found(
            bool(
                json.loads(
                    aws.client("cloudwatch").get_dashboard(DashboardName=properties["DashboardName"])["DashboardBody"]
                )["widgets"]
            )
        ),
    }


def test_every_stack_deploys_and_every_resource_exists(deployed_local_platform: Any) -> None:
    aws = deployed_local_platform.aws
    cfn = aws.client("cloudformation")
    assert sorted(deployed_local_platform.stack_names) == sorted(
        f"trainstack-local-{part}" for part in ("storage", "network", "image", "training", "notebook")
    )
    missing, unchecked, skipped = [], set(), set()
    for stack in deployed_local_platform.stack_names:
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] in (
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
        )
        template = json.loads(deployed_local_platform.templates[stack].read_text())
        deployed = {
            item["LogicalResourceId"]: item
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
            for item in page["StackResourceSummaries"]
        }

        def physical_of(reference: Any, deployed: dict = deployed) -> str:
            # {"Ref": X} or {"Fn::GetAtt": [X, ...]}: moto's physical id of X is what the APIs take.
            logical = reference["Ref"] if "Ref" in reference else reference["Fn::GetAtt"][0]
            return deployed[logical]["PhysicalResourceId"]

        finders = _finders(aws, physical_of)
        for logical_id, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind in NOT_CREATED_BY_MOTO:
                skipped.add(kind)
                continue
            if kind not in finders:
                unchecked.add(kind)
                continue
            if logical_id not in deployed:
                missing.append(f"{stack}/{logical_id} ({kind}): not in the stack")
                continue
            physical = deployed[logical_id]["PhysicalResourceId"]
            try:
                finders[kind](physical, resource.get("Properties", {}))
            except Exception as error:  # collect every miss before failing
                if kind not in KNOWN_BROKEN:
                    missing.append(f"{stack}/{logical_id} ({kind}) {physical}: {error}")
            else:
                if kind in KNOWN_BROKEN:
                    missing.append(f"{stack}/{logical_id} ({kind}) now works: remove it from KNOWN_BROKEN")
    assert not unchecked, f"add a finder for {sorted(unchecked)}"
    assert not missing, "\n".join(missing)
    assert skipped <= NOT_CREATED_BY_MOTO


def test_deployed_state_machines_are_executable(deployed_local_platform: Any) -> None:
    aws = deployed_local_platform.aws
    sfn = aws.client("stepfunctions")
    machines = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith("trainstack-local")]
    declared = sum(
        resource["Type"] == "AWS::StepFunctions::StateMachine"
        for path in deployed_local_platform.templates.values()
        for resource in json.loads(path.read_text())["Resources"].values()
    )
    assert len(machines) == declared
    for machine in machines:  # parsed by the executing store, so a broken definition fails here
        assert sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["status"] == "ACTIVE"


def test_bootstrap_created_the_version_parameter(deployed_local_platform: Any) -> None:
    version = deployed_local_platform.aws.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    assert int(version["Parameter"]["Value"]) >= 6
