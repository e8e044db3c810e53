"""Security properties of the synthesized platform, asserted on the templates every environment produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Stage, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from app import validation_failures
from trainstack.config import ResourceNames, load_environment

ENVS = ["local", "dev", "prod"]


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _one(template: dict, kind: str) -> dict:
    found = _resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {list(found)}"
    return next(iter(found.values()))


def _statements(template: dict) -> list[dict]:
    return [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("env", ENVS)
def test_cdk_nag_reports_nothing_unacknowledged(synthesized, env: str) -> None:
    report = AwsSolutionsChecks().validate_scope(synthesized.stages[env])
    assert [v.rule_name for v in report.violations] == []
    assert validation_failures(Path(synthesized.assembly.directory) / "validation-report.json") == []


def test_cdk_nag_gate_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stage = Stage(app, "insecure")
    stack = Stack(stage, "Bare")  # a bucket with none of the platform's defaults
    s3.Bucket(stack, "PlainBucket")
    Validations.of(stage).add_plugins(AwsSolutionsChecks(stage))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    # Through the CLI the app gets no exception; app.py reads the same report and exits 1.
    failures = validation_failures(tmp_path / "validation-report.json")
    rules = {line.split(":")[0].strip() for line in failures}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


@pytest.mark.parametrize("env", ENVS)
def test_kms_key_rotates_and_is_retained(synthesized, env: str) -> None:
    template = synthesized.template(env, "storage")
    key = _one(template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("env", ENVS)
def test_buckets_are_encrypted_private_versioned_logged_and_retained(synthesized, env: str) -> None:
    template = synthesized.template(env, "storage")
    names = ResourceNames.of(load_environment(env))
    buckets = {b["Properties"]["BucketName"]: b for b in _resources(template, "AWS::S3::Bucket").values()}
    assert set(buckets) == {names.data_bucket, names.artifacts_bucket, names.access_log_bucket}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain", name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] > 0
        encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        if name == names.access_log_bucket:
            assert encryption == {"SSEAlgorithm": "AES256"}  # log delivery cannot write to KMS buckets
        else:
            assert encryption["SSEAlgorithm"] == "aws:kms"
            assert "Fn::GetAtt" in encryption["KMSMasterKeyID"]
            assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    checkpoints = {r["Id"]: r for r in buckets[names.artifacts_bucket]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert checkpoints["expire-old-checkpoints"]["Prefix"] == "checkpoints/"


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_denies_requests_without_tls(synthesized, env: str) -> None:
    template = synthesized.template(env, "storage")
    policies = _resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        denies = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*"


def test_ecr_repository_scans_is_immutable_encrypted_and_expires_untagged(tmp_path: Path) -> None:
    """In `repository` mode jobs run the platform repository's image, and the repository is hardened."""
    from aws_cdk import aws_kms as kms

    from trainstack.config import parse_environment
    from trainstack.platform.image_stack import ImageStack

    data = load_environment("dev").model_dump(mode="json", exclude_none=True)
    data["image"] = {"mode": "repository", "repository_tag": "v1"}
    config = parse_environment(data, "repository-mode variant of dev")
    app = App(outdir=str(tmp_path))
    stage = Stage(app, "variant")
    key = kms.Key(Stack(stage, "Keys"), "Key")
    image = ImageStack(stage, "Image", config=config, key=key)
    template = stage.synth().get_stack_by_name(image.stack_name).template
    repo = _one(template, "AWS::ECR::Repository")["Properties"]
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    rules = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rules[0]["selection"]["tagStatus"] == "untagged"
    [repository_id] = _resources(template, "AWS::ECR::Repository")
    uri = json.dumps(template["Outputs"]["TrainingImageUri"])
    assert f'{{"Ref": "{repository_id}"}}, ":v1"' in uri
    assert image.pull_repository_arns == [image.repository.repository_arn]


@pytest.mark.parametrize("env", ENVS)
def test_no_empty_platform_repository_where_jobs_run_another_image(synthesized, env: str) -> None:
    assert not _resources(synthesized.template(env, "image"), "AWS::ECR::Repository")


@pytest.mark.parametrize("env", ENVS)
def test_notebook_is_locked_down(synthesized, env: str) -> None:
    template = synthesized.template(env, "notebook")
    props = _one(template, "AWS::SageMaker::NotebookInstance")["Properties"]
    assert props["DirectInternetAccess"] == "Disabled"
    assert props["RootAccess"] == "Disabled"
    assert props["KmsKeyId"]
    assert props["SubnetId"] and props["SecurityGroupIds"]
    assert props["InstanceMetadataServiceConfiguration"] == {"MinimumInstanceMetadataServiceVersion": "2"}
    assert props["InstanceType"] == load_environment(env).notebook.instance_type
    lifecycle = _one(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig")["Properties"]
    script = json.dumps(lifecycle["OnStart"])
    assert (
        "trainstack.json" in script
        and "--idle-minutes " + str(load_environment(env).notebook.idle_stop_minutes) in script
    )


@pytest.mark.parametrize("env", ENVS)
def test_execution_role_is_scoped_to_the_platforms_resources(synthesized, env: str) -> None:
    template = synthesized.template(env, "training")
    names = ResourceNames.of(load_environment(env))
    roles = _resources(template, "AWS::IAM::Role")
    [(role_id, execution)] = [
        (k, r) for k, r in roles.items() if r["Properties"].get("RoleName") == names.execution_role
    ]
    assert "ManagedPolicyArns" not in execution["Properties"]
    [trust] = execution["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    # SageMaker documents aws:SourceArn for training jobs (trainstack/platform/constructs/trusted_services.py).
    prefix = load_environment(env).training.job_name_prefix
    assert trust["Condition"] == {"ArnLike": {"aws:SourceArn": names.arn("sagemaker", f"training-job/{prefix}-*")}}

    statements = {
        statement["Sid"]: statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    assert "ReadTrainingData" in statements
    allowed_buckets = {names.data_bucket, names.artifacts_bucket}
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement
        for resource in _as_list(statement["Resource"]):
            if isinstance(resource, str) and resource.startswith("arn:aws:s3:::"):
                bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
                assert bucket in allowed_buckets or bucket.startswith("cdk-"), resource
    assert statements["ReadTrainingData"]["Resource"] == f"arn:aws:s3:::{names.data_bucket}/*"
    assert sorted(_as_list(statements["WriteModelsAndCheckpoints"]["Resource"])) == [
        f"arn:aws:s3:::{names.artifacts_bucket}/checkpoints/*",
        f"arn:aws:s3:::{names.artifacts_bucket}/output/*",
    ]
    # Only calls IAM cannot scope get "*".
    star = {a for s in statements.values() if s["Resource"] == "*" for a in _as_list(s["Action"])}
    assert star <= {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    }
    code = statements["ReadPlatformCodePackage"]["Resource"]
    assert "*" not in json.dumps(code)


@pytest.mark.parametrize("env", ENVS)
def test_notebook_role_passes_only_the_execution_role(synthesized, env: str) -> None:
    statements = {s["Sid"]: s for s in _statements(synthesized.template(env, "notebook"))}
    passrole = statements["PassExecutionRole"]
    assert passrole["Action"] == "iam:PassRole"
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "*" not in json.dumps(passrole["Resource"])


def test_permissions_boundary_applies_to_every_role_when_configured(synthesized) -> None:
    boundary = load_environment("prod").permissions_boundary_arn
    for part in ("training", "notebook"):
        for role in _resources(synthesized.template("prod", part), "AWS::IAM::Role").values():
            assert role["Properties"]["PermissionsBoundary"] == boundary
    # dev names none and gets the platform's own (tests/test_permissions_boundary.py); local runs on no account.
    for role in _resources(synthesized.template("local", "training"), "AWS::IAM::Role").values():
        assert "PermissionsBoundary" not in role["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_resources_carry_environment_team_and_cost_centre_tags(synthesized, env: str) -> None:
    config = load_environment(env)
    bucket = next(iter(_resources(synthesized.template(env, "storage"), "AWS::S3::Bucket").values()))
    tags = {t["Key"]: t["Value"] for t in bucket["Properties"]["Tags"]}
    assert tags["trainstack:environment"] == env
    assert tags["trainstack:team"] == config.tags.team
    assert tags["trainstack:cost-centre"] == config.tags.cost_centre


def test_private_vpc_has_endpoints_flow_logs_and_no_internet(synthesized) -> None:
    template = synthesized.template("dev", "network")
    assert not _resources(template, "AWS::EC2::InternetGateway")
    assert not _resources(template, "AWS::EC2::NatGateway")
    assert _resources(template, "AWS::EC2::FlowLog")
    services = {
        json.dumps(e["Properties"]["ServiceName"]) for e in _resources(template, "AWS::EC2::VPCEndpoint").values()
    }
    for suffix in ("sagemaker.api", "ecr.api", "ecr.dkr", "logs", "sts", ".s3"):
        assert any(suffix in s for s in services), (suffix, services)


def test_existing_vpc_is_used_by_id_without_lookups(synthesized) -> None:
    template = synthesized.template("prod", "notebook")
    notebook = _one(template, "AWS::SageMaker::NotebookInstance")["Properties"]
    assert notebook["SubnetId"] == load_environment("prod").network.subnet_ids[0]
    assert not _resources(synthesized.template("prod", "network"), "AWS::EC2::VPC")


def test_image_modes(synthesized) -> None:
    local = synthesized.stages["local"].image.image_uri
    assert local == load_environment("local").image.dlc_uri("us-east-1")
    prod_outputs = synthesized.template("prod", "image")["Outputs"]
    assert "cdk-hnb659fds-container-assets" in json.dumps(prod_outputs["TrainingImageUri"])


@pytest.mark.parametrize("env", ENVS)
def test_trust_policies_carry_confused_deputy_conditions_only_where_aws_documents_them(synthesized, env: str) -> None:
    """Step Functions roles: aws:SourceArn (their own state machine) and aws:SourceAccount, as the Step Functions
    guide shows; the notebook role: none (SageMaker documents none for notebook instances)."""
    names = ResourceNames.of(load_environment(env))
    machines = {
        "PipelineRole": names.state_machine,
        "PipelinePoolCleanupRole": f"{names.state_machine}-pool-cleanup",
    }
    roles = _resources(synthesized.template(env, "training"), "AWS::IAM::Role")
    for prefix, machine in machines.items():
        [role] = [r for k, r in roles.items() if k.startswith(prefix) and "Events" not in k]
        [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "states.amazonaws.com"}
        assert trust["Condition"] == {
            "ArnLike": {"aws:SourceArn": names.arn("states", f"stateMachine:{machine}")},
            "StringEquals": {"aws:SourceAccount": names.account},
        }
    if load_environment(env).notebook.enabled:
        [notebook] = _resources(synthesized.template(env, "notebook"), "AWS::IAM::Role").values()
        [trust] = notebook["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
        }
