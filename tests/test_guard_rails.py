"""The platform's guard rails as they stand in the synthesized IAM and resource policies of every environment.

These pin each condition so that removing or loosening one guard rail turns a test red. That the conditions
refuse what they should is for an IAM evaluator to show (the embedded AWS's, once it evaluates policies); the
refusals each condition must produce are listed in trainstack/platform/constructs/create_training_job_state.py's
`training_job_conditions` and in the README's Security section.
"""

from __future__ import annotations

import json

import pytest

from trainstack.config import ResourceNames, load_environment
from trainstack.instance_storage import local_storage_families
from trainstack.platform.constructs.create_training_job_state import (
    CREATE_ON_EBS,
    CREATE_ON_LOCAL_STORAGE,
    UPDATE_INSIDE_GUARD_RAILS,
)

ENVS = ["local", "dev", "prod"]


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _statements(template: dict, role_logical_id: str | None = None) -> list[dict]:
    return [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if role_logical_id is None or {"Ref": role_logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _by_sid(statements: list[dict]) -> dict[str, dict]:
    return {s["Sid"]: s for s in statements if "Sid" in s}


def _job_creating_policies(synthesized, env: str) -> dict[str, list[dict]]:
    """The statements of each role that can create training jobs: the state machine's and the notebook's."""
    training = synthesized.template(env, "training")
    [machine_role] = [k for k in _resources(training, "AWS::IAM::Role") if k.startswith("PipelineRole")]
    return {
        "state machine": _statements(training, machine_role),
        "notebook": _statements(synthesized.template(env, "notebook")),
    }


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("role", ["state machine", "notebook"])
def test_create_training_job_is_allowed_only_inside_the_guard_rails(synthesized, env: str, role: str) -> None:
    config = load_environment(env)
    families = config.training.allowed_instance_families
    local = [f for f in families if f in local_storage_families()]
    ebs = [f for f in families if f not in local]
    statements = _job_creating_policies(synthesized, env)[role]
    creating = {
        s["Sid"]: s for s in statements if s["Effect"] == "Allow" and "sagemaker:CreateTrainingJob" in _actions(s)
    }
    # No other way to create a job: one statement per storage kind the environment allows.
    assert set(creating) == {sid for sid, kinds in ((CREATE_ON_EBS, ebs), (CREATE_ON_LOCAL_STORAGE, local)) if kinds}
    names = ResourceNames.of(config)
    for sid, statement in creating.items():
        assert statement["Resource"] == names.arn("sagemaker", f"training-job/{config.training.job_name_prefix}-*")
        condition = statement["Condition"]
        key = json.dumps(condition["ArnEquals"]["sagemaker:OutputKmsKey"])
        assert "PlatformKey" in key
        vpc_null = {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"}
        if sid == CREATE_ON_EBS:
            # An EBS volume must be encrypted with the platform key.
            assert condition["ArnEquals"]["sagemaker:VolumeKmsKey"] == json.loads(key)
            assert condition["Null"] == {"sagemaker:InstanceTypes": "false", **vpc_null}
            expected_families = ebs
        else:
            # Local NVMe storage takes no key (SageMaker refuses one): the request must name none.
            assert "sagemaker:VolumeKmsKey" not in condition["ArnEquals"]
            assert condition["Null"] == {
                "sagemaker:InstanceTypes": "false",
                **vpc_null,
                "sagemaker:VolumeKmsKey": "true",
            }
            expected_families = local
        assert condition["ForAllValues:StringLike"]["sagemaker:InstanceTypes"] == [
            f"ml.{family}.*" for family in expected_families
        ]
        assert condition["NumericLessThanEquals"] == {
            "sagemaker:MaxRuntimeInSeconds": str(config.training.max_runtime_ceiling_seconds)
        }
        assert condition["NumericLessThanEqualsIfExists"] == {
            "sagemaker:KeepAlivePeriod": str(config.training.keep_alive_ceiling_seconds)
        }
        assert condition["BoolIfExists"] == {"sagemaker:EnableRemoteDebug": "false"}
        tags = {k.removeprefix("aws:RequestTag/"): v for k, v in condition["StringEquals"].items()}
        assert tags == config.platform_tags and set(tags) == {
            "trainstack:environment",
            "trainstack:team",
            "trainstack:cost-centre",
        }
        # A job without a VPC is refused: ForAllValues is true of an absent list, so Null must say "present".
        vpc = condition["ForAllValues:StringEquals"]
        assert set(vpc) == {"sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds"}
        assert len(vpc["sagemaker:VpcSecurityGroupIds"]) == 1
        if config.network.subnet_ids:
            assert vpc["sagemaker:VpcSubnets"] == config.network.subnet_ids
        if role == "notebook":
            assert condition["Bool"] == {"sagemaker:InterContainerTrafficEncryption": "true"}


@pytest.mark.parametrize("env", ENVS)
def test_every_role_that_updates_jobs_does_so_inside_the_ceilings(synthesized, env: str) -> None:
    """UpdateTrainingJob takes RemoteDebugConfig and a new keep-alive: the same rails as CreateTrainingJob."""
    config = load_environment(env)
    training, notebook = synthesized.template(env, "training"), synthesized.template(env, "notebook")
    updating = [
        s
        for template in (training, notebook)
        for s in _statements(template)
        if s["Effect"] == "Allow" and "sagemaker:UpdateTrainingJob" in _actions(s)
    ]
    # The notebook's and the pool cleanup's.
    assert len(updating) == 2
    for statement in updating:
        assert statement["Sid"] == UPDATE_INSIDE_GUARD_RAILS and _actions(statement) == ["sagemaker:UpdateTrainingJob"]
        assert statement["Condition"] == {
            "BoolIfExists": {"sagemaker:EnableRemoteDebug": "false"},
            "NumericLessThanEqualsIfExists": {
                "sagemaker:KeepAlivePeriod": str(config.training.keep_alive_ceiling_seconds)
            },
            "ForAllValues:StringLike": {
                "sagemaker:InstanceTypes": [f"ml.{f}.*" for f in config.training.allowed_instance_families]
            },
        }


@pytest.mark.parametrize("env", ENVS)
def test_tagging_needs_the_platform_tags_and_only_the_pipeline_tags_executions(synthesized, env: str) -> None:
    config = load_environment(env)
    expected = {"StringEquals": {f"aws:RequestTag/{k}": v for k, v in config.platform_tags.items()}}
    for role, statements in _job_creating_policies(synthesized, env).items():
        sids = _by_sid(statements)
        assert sids["TagTrainingJobsAsThePlatform"]["Condition"] == expected, role
        tagging = [s for s in statements if s["Effect"] == "Allow" and "sagemaker:AddTags" in _actions(s)]
        assert tagging == [sids["TagTrainingJobsAsThePlatform"]], role
    notebook = _by_sid(_job_creating_policies(synthesized, env)["notebook"])
    deny = notebook["OnlyThePipelineTagsExecutions"]
    assert deny["Effect"] == "Deny"
    assert sorted(_actions(deny)) == ["sagemaker:AddTags", "sagemaker:CreateTrainingJob"]
    assert deny["Condition"] == {"ForAnyValue:StringEquals": {"aws:TagKeys": ["trainstack:execution"]}}
    assert "OnlyThePipelineTagsExecutions" not in _by_sid(_job_creating_policies(synthesized, env)["state machine"])


@pytest.mark.parametrize("env", ENVS)
def test_execution_role_uses_the_key_network_and_metrics_only_as_sagemaker_does(synthesized, env: str) -> None:
    config = load_environment(env)
    training = synthesized.template(env, "training")
    [role] = [k for k in _resources(training, "AWS::IAM::Role") if k.startswith("ExecutionRole")]
    statements = _statements(training, role)
    sids = _by_sid(statements)
    region = config.region
    assert sids["UsePlatformKeyThroughServices"]["Condition"] == {
        "StringEquals": {"kms:ViaService": [f"s3.{region}.amazonaws.com", f"sagemaker.{region}.amazonaws.com"]}
    }
    assert sids["GrantPlatformKeyToAwsServices"]["Action"] == "kms:CreateGrant"
    assert sids["GrantPlatformKeyToAwsServices"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    kms = [a for s in statements for a in _actions(s) if a.startswith("kms:")]
    assert sorted(kms) == ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    assert sids["PublishTrainingMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }
    every_action = {a for s in statements for a in _actions(s)}
    # Deletes only where checkpoint sync mirrors a host's pruning: never a model under output/.
    deletes = [s for s in statements if "s3:DeleteObject" in _actions(s)]
    assert [s["Sid"] for s in deletes] == ["PruneCheckpoints"] and _actions(deletes[0]) == ["s3:DeleteObject"]
    resource = json.dumps(deletes[0]["Resource"])
    assert resource.count("checkpoints/*") == 1 and "output/" not in resource
    assert "logs:CreateLogGroup" not in every_action  # the group is created encrypted at deploy time
    # Network interfaces: created only with the platform's subnets and group, managed only in its VPC.
    create = sids["CreateJobNetworkInterfacesInPlatformSubnets"]
    resources = json.dumps(create["Resource"])
    assert "subnet/" in resources and "security-group/" in resources and ":subnet/*" not in resources
    assert "ArnEquals" in sids["ManageJobNetworkInterfaces"]["Condition"]
    assert "ec2:Vpc" in sids["ManageJobNetworkInterfaces"]["Condition"]["ArnEquals"]


@pytest.mark.parametrize("env", ENVS)
def test_kms_buckets_refuse_other_keys_and_every_bucket_refuses_old_tls(synthesized, env: str) -> None:
    names = ResourceNames.of(load_environment(env))
    storage = synthesized.template(env, "storage")
    buckets = {k: v["Properties"]["BucketName"] for k, v in _resources(storage, "AWS::S3::Bucket").items()}
    for policy in _resources(storage, "AWS::S3::BucketPolicy").values():
        bucket = buckets[policy["Properties"]["Bucket"]["Ref"]]
        sids = _by_sid(policy["Properties"]["PolicyDocument"]["Statement"])
        assert sids["DenyTlsBelow12"]["Effect"] == "Deny"
        assert sids["DenyTlsBelow12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
        if bucket == names.access_log_bucket:
            assert "DenyOtherKmsKeys" not in sids  # S3-managed: log delivery cannot write under KMS
            continue
        # Judged as AWS judges it (trainstack.embedded_aws.iam_policy_evaluation): an account administrator
        # holds every identity permission, so only the bucket policy's denies can refuse.
        platform_key = "arn:aws:kms:us-east-1:111111111111:key/platform"
        document = json.loads(json.dumps(policy["Properties"]["PolicyDocument"]).replace(
            json.dumps(sids["DenyOtherKmsKeys"]["Condition"]["StringNotEquals"][
                "s3:x-amz-server-side-encryption-aws-kms-key-id"]), json.dumps(platform_key)))  # fmt: skip
        outcomes = {
            name: _put_allowed(document, headers)
            for name, headers in {
                "no encryption headers (the bucket default)": {},
                "the platform key": {"aws:kms": platform_key},
                "another key": {"aws:kms": platform_key.replace("platform", "other")},
                "aws:kms without a key (aws/s3)": {"aws:kms": None},
                "SSE-S3": {"AES256": None},
            }.items()
        }
        assert outcomes == {
            "no encryption headers (the bucket default)": True,
            "the platform key": True,
            "another key": False,
            "aws:kms without a key (aws/s3)": False,
            "SSE-S3": False,
        }, bucket


def _put_allowed(bucket_policy: dict, headers: dict[str, str | None]) -> bool:
    from trainstack.embedded_aws.iam_policy_evaluation import AuthorizationRequest, Policy, Principal, evaluate

    context: dict = {"aws:SecureTransport": True, "s3:TlsVersion": "1.2"}
    for encryption, key in headers.items():
        context["s3:x-amz-server-side-encryption"] = encryption
        if key:
            context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = key
    # CloudFormation tokens stand in for the bucket's ARNs: every statement covers this bucket's objects.
    statements = [{**statement, "Resource": "arn:aws:s3:::bucket/*"} for statement in bucket_policy["Statement"]]
    bucket_policy = {**bucket_policy, "Statement": statements}
    request = AuthorizationRequest(
        Principal("arn:aws:iam::111111111111:root", "111111111111"), "s3:PutObject", "arn:aws:s3:::bucket/k", context
    )
    administrator = Policy("admin", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    return evaluate(request, [administrator], resource_policy=Policy("bucket", bucket_policy)).allowed


@pytest.mark.parametrize("env", ["local", "dev"])
def test_vpc_endpoints_serve_only_this_account_and_the_platforms_buckets(synthesized, env: str) -> None:
    config = load_environment(env)
    names = ResourceNames.of(config)
    for endpoint in _resources(synthesized.template(env, "network"), "AWS::EC2::VPCEndpoint").values():
        statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
        if endpoint["Properties"]["VpcEndpointType"] == "Interface":
            assert [s["Condition"] for s in statements] == [{"StringEquals": {"aws:PrincipalAccount": config.account}}]
            continue
        sids = _by_sid(statements)
        buckets = {r.removeprefix("arn:aws:s3:::").split("/")[0] for r in sids["PlatformBuckets"]["Resource"]}
        assert buckets == {
            names.data_bucket,
            names.artifacts_bucket,
            f"cdk-hnb659fds-assets-{config.account}-{config.region}",
        }
        assert sids["PlatformBuckets"]["Condition"] == {"StringEquals": {"aws:PrincipalAccount": config.account}}
        assert sids["EcrImageLayers"]["Resource"] == f"arn:aws:s3:::prod-{config.region}-starport-layer-bucket/*"
