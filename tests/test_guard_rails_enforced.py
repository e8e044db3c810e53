"""Issue #10's guard rails, refusing in the embedded AWS as IAM evaluates them.

One CreateTrainingJob request that the notebook role's guard rails accept (`conforming_request`) is shown to
run; every refusal below changes exactly one thing in it (or one call of the execution role) and must be
refused naming the action, with no job created. So each test fails when its guard rail is taken out of
`stacks/` (a condition, a `Null` pairing, a Deny, a bucket-policy statement) or when the embedded AWS stops
computing the condition key it depends on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import MISSING
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import assumer_of, role_arn, stack_outputs

from trainstack.config import EnvironmentConfig, ResourceNames, load_environment
from trainstack.embedded_aws import testing
from trainstack.embedded_aws.assumed_role_credentials import role_client
from trainstack.embedded_aws.testing import upload_script, wait_for_job
from trainstack.local_platform import stage_demo_data

pytestmark = pytest.mark.slow
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
PREFIX = CONFIG.training.job_name_prefix
COST_CENTRE = "trainstack:cost-centre"
SCRIPT = "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text('m')\n"
Request = dict[str, Any]
# An EBS-backed type of the allowed families: the table below removes or adds its volume key.
CONFORMING_INSTANCE_TYPE = "ml.m5.xlarge"


@pytest.fixture(scope="module")
def aws(deployed_local_platform: Any, tiny_model_dir: Any) -> Any:
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    return aws


def conforming_request(aws: Any, name: str, **overrides: Any) -> Request:
    """A CreateTrainingJob request inside every guard rail of the environment, as a notebook user builds it
    from the stacks' outputs: platform subnets and group, platform key on volume and output, an allowed type,
    runtime within the ceiling, the platform's tags, encryption between nodes, the platform's execution role."""
    network, storage, training = (stack_outputs(aws, stack) for stack in ("network", "storage", "training"))
    code = upload_script(aws.client("s3"), NAMES.artifacts_bucket, SCRIPT)
    request = request_from_outputs(
        CONFIG, name, code, network, storage, training, instance_type=CONFORMING_INSTANCE_TYPE
    )
    request.update(overrides)
    return request


def request_from_outputs(
    config: EnvironmentConfig,
    name: str,
    code: str,
    network: dict[str, str],
    storage: dict[str, str],
    training: dict[str, str],
    *,
    instance_type: str,
) -> Request:
    """The conforming request of `config`'s environment from its network, storage and training stack outputs
    (tests/test_studio_guard_rails.py builds it from synthesized outputs)."""
    names = ResourceNames.of(config)
    key = storage["KmsKeyArn"]
    return testing.job_request(
        name,
        names.artifacts_bucket,
        code,
        RoleArn=training["ExecutionRoleArn"],
        OutputDataConfig={"S3OutputPath": f"s3://{names.artifacts_bucket}/output", "KmsKeyId": key},
        ResourceConfig={
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": key,
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        VpcConfig={"Subnets": network["SubnetIds"].split(","), "SecurityGroupIds": [network["SecurityGroupId"]]},
        EnableInterContainerTrafficEncryption=True,
        Tags=[{"Key": k, "Value": v} for k, v in config.platform_tags.items()],
    )


def job_name(tag: str) -> str:
    return f"{PREFIX}-guard-{tag}-{uuid.uuid4().hex[:6]}"


def assert_no_job(aws: Any, name: str) -> None:
    with pytest.raises(ClientError) as missing:
        aws.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert missing.value.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"), missing.value


def refused(call: Callable[[], Any], action: str, *, code: str = "AccessDeniedException") -> str:
    with pytest.raises(ClientError) as denied:
        call()
    assert denied.value.response["Error"]["Code"] == code, denied.value
    message = str(denied.value)
    assert f"is not authorized to perform: {action} on resource: " in message, message
    return message


# ------------------------------------------------------------------------------------------ edits of one thing


def _resource(request: Request, **changes: Any) -> None:
    request["ResourceConfig"].update(changes)


def _without_tag(request: Request, key: str) -> None:
    request["Tags"] = [t for t in request["Tags"] if t["Key"] != key]


def _another_subnet(aws: Any, request: Request) -> None:
    ours = set(request["VpcConfig"]["Subnets"])
    others = [s["SubnetId"] for s in aws.client("ec2").describe_subnets()["Subnets"] if s["SubnetId"] not in ours]
    request["VpcConfig"]["Subnets"] = [request["VpcConfig"]["Subnets"][0], others[0]]


def _extra_security_group(aws: Any, request: Request) -> None:
    group = aws.client("ec2").create_security_group(GroupName=f"other-{uuid.uuid4().hex[:6]}", Description="other")
    request["VpcConfig"]["SecurityGroupIds"].append(group["GroupId"])


def _another_output_key(aws: Any, request: Request) -> None:
    request["OutputDataConfig"]["KmsKeyId"] = aws.client("kms").create_key(Description="other")["KeyMetadata"]["Arn"]


# Each: (what changes, edit of the conforming request, the action refused, explicitly denied).
NOTEBOOK_REFUSALS: list[tuple[str, Callable[[Any, Request], None], str, bool]] = [
    ("no VpcConfig", lambda aws, r: r.pop("VpcConfig"), "sagemaker:CreateTrainingJob", False),
    ("another subnet", _another_subnet, "sagemaker:CreateTrainingJob", False),
    ("an extra security group", _extra_security_group, "sagemaker:CreateTrainingJob", False),
    ("another output key", _another_output_key, "sagemaker:CreateTrainingJob", False),
    ("no volume key", lambda aws, r: r["ResourceConfig"].pop("VolumeKmsKeyId"), "sagemaker:CreateTrainingJob", False),
    (
        # ml.p4de has local NVMe storage: the request may name no volume key (SageMaker refuses one there too).
        "a volume key on a local-storage type",
        lambda aws, r: _resource(r, InstanceType="ml.p4de.24xlarge"),
        "sagemaker:CreateTrainingJob",
        False,
    ),
    (
        "a type outside the allowed families",
        lambda aws, r: _resource(r, InstanceType="ml.c6i.xlarge"),
        "sagemaker:CreateTrainingJob",
        False,
    ),
    (
        "runtime one above the ceiling",
        lambda aws, r: r["StoppingCondition"].update(
            MaxRuntimeInSeconds=CONFIG.training.max_runtime_ceiling_seconds + 1
        ),
        "sagemaker:CreateTrainingJob",
        False,
    ),
    (
        "no inter-container encryption",
        lambda aws, r: r.update(EnableInterContainerTrafficEncryption=False),
        "sagemaker:CreateTrainingJob",
        False,
    ),
    (
        "the cost centre overridden",
        lambda aws, r: r["Tags"].__setitem__(
            [t["Key"] for t in r["Tags"]].index(COST_CENTRE), {"Key": COST_CENTRE, "Value": "CC-9999"}
        ),
        "sagemaker:CreateTrainingJob",
        False,
    ),
    ("the cost centre missing", lambda aws, r: _without_tag(r, COST_CENTRE), "sagemaker:CreateTrainingJob", False),
    (
        "a trainstack:execution tag",
        lambda aws, r: r["Tags"].append({"Key": "trainstack:execution", "Value": "forged"}),
        "sagemaker:CreateTrainingJob",
        True,
    ),
    ("another execution role", lambda aws, r: r.update(RoleArn=testing.ROLE), "iam:PassRole", False),
]


@pytest.fixture(scope="module")
def notebook(aws: Any) -> Any:
    role = role_arn(NAMES.notebook_role)
    return role_client(aws.endpoint_url, aws.region, "sagemaker", role, "notebook", assumer=assumer_of(role))


@pytest.fixture(scope="module")
def base_job(aws: Any, notebook: Any) -> str:
    """The conforming request, sent as the notebook role, creates a job that completes."""
    name = job_name("base")
    notebook.create_training_job(**conforming_request(aws, name))
    job = wait_for_job(aws.client("sagemaker"), name, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job["TrainingJobArn"]


def test_the_conforming_request_runs(base_job: str) -> None:
    assert base_job.endswith(f":training-job/{PREFIX}-guard-base-" + base_job.rsplit("-", 1)[-1])


@pytest.mark.parametrize(
    ("change", "edit", "action", "explicit"), NOTEBOOK_REFUSALS, ids=[r[0] for r in NOTEBOOK_REFUSALS]
)
def test_the_notebook_role_is_refused_a_job_with(
    aws: Any,
    notebook: Any,
    base_job: str,
    change: str,
    edit: Callable[[Any, Request], None],
    action: str,
    explicit: bool,
) -> None:
    name = job_name("nb")
    request = conforming_request(aws, name)
    edit(aws, request)
    message = refused(lambda: notebook.create_training_job(**request), action)
    assert f"assumed-role/{NAMES.notebook_role}/notebook " in message
    assert ("with an explicit deny in an identity-based policy" in message) is explicit, message
    assert_no_job(aws, name)


@contextlib.contextmanager
def keep_alive_ceiling(aws: Any, role: str, seconds: int) -> Iterator[None]:
    """The deployed role's CreateTrainingJob guard rail with a lower keep-alive ceiling; restored after."""
    iam = aws.client("iam")
    originals = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    edited = 0
    try:
        for name, document in originals.items():
            changed = json.loads(json.dumps(document))
            for statement in changed["Statement"]:
                ceiling = statement.get("Condition", {}).get("NumericLessThanEqualsIfExists", {})
                if "sagemaker:KeepAlivePeriod" in ceiling:
                    ceiling["sagemaker:KeepAlivePeriod"] = str(seconds)
                    edited += 1
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(changed))
        # One per CreateTrainingJob statement and one for UpdateTrainingJob, where the role has it.
        assert edited >= 1, f"expected a keep-alive guard rail on {role}, found none"
        yield
    finally:
        for name, document in originals.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def test_the_notebook_role_is_refused_a_keep_alive_above_the_ceiling(aws: Any, notebook: Any, base_job: str) -> None:
    """The local ceiling is SageMaker's own maximum (3600 s), which AWS refuses as invalid anyway; the deployed
    guard rail is lowered to 600 s to show the condition refuses what exceeds it, and nothing else does."""
    assert CONFIG.training.keep_alive_ceiling_seconds == 3600
    name = job_name("keepalive")
    request = conforming_request(aws, name)
    _resource(request, KeepAlivePeriodInSeconds=601)
    with keep_alive_ceiling(aws, NAMES.notebook_role, 600):
        refused(lambda: notebook.create_training_job(**request), "sagemaker:CreateTrainingJob")
    assert_no_job(aws, name)


def _seeds_shape(request: Request) -> None:
    """The seed's job: 2 x ml.p4de.24xlarge (local NVMe storage, so no volume key), keep-alive 3600, two days."""
    request["ResourceConfig"] = {
        "InstanceType": "ml.p4de.24xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
        "KeepAlivePeriodInSeconds": 3600,
    }
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 2 * 24 * 3600}


def _created_then_stopped(aws: Any, name: str) -> None:
    """The job exists (IAM and SageMaker's rules let it through); stopped at once, its instances released."""
    sagemaker = aws.client("sagemaker")
    assert sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobName"] == name
    with contextlib.suppress(ClientError):
        sagemaker.stop_training_job(TrainingJobName=name)
    wait_for_job(sagemaker, name, timeout=300)
    with contextlib.suppress(ClientError):
        sagemaker.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 0})


def test_the_notebook_role_may_create_the_seeds_p4de_job_without_a_volume_key(aws: Any, notebook: Any) -> None:
    name = job_name("p4de")
    request = conforming_request(aws, name)
    _seeds_shape(request)
    notebook.create_training_job(**request)
    _created_then_stopped(aws, name)


def _seed_run_inputs() -> dict[str, dict[str, Any]]:
    """The seed's run as the console's execution input and as tn.Estimator builds it."""
    import sys

    from conftest import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "notebooks"))
    try:
        import trainstack_notebook as tn
    finally:
        sys.path.remove(str(REPO_ROOT / "notebooks"))
    console = json.loads((REPO_ROOT / "examples" / "inputs" / "seed-p4de.json").read_text())
    resources = tn.Resources(**{f.name: "unused" for f in dataclasses.fields(tn.Resources) if f.default is MISSING})
    estimator = tn.Estimator(
        entry_point=CONFIG.training.entry_point,
        instance_type="ml.p4de.24xlarge",
        instance_count=2,
        max_run=2 * 24 * 3600,
        keep_alive_period_in_seconds=3600,
        resources=resources,
    )
    channels = {name: f"s3://{NAMES.data_bucket}/datasets/sample/{name}/" for name in ("train", "val")}
    return {"console input": console, "tn.Estimator": estimator.run_input(channels)}


@pytest.mark.parametrize("source", ["console input", "tn.Estimator"])
def test_the_state_machine_role_may_create_the_seeds_p4de_job(
    aws: Any, state_machine_sagemaker: Any, source: str
) -> None:
    """The request the deployed state machine renders for the seed's run passes the embedded IAM (as the state
    machine's role) and SageMaker's rules: no volume key on ml.p4de, the platform's key on the output."""
    from trainstack.run_preview import preview

    arn = stack_outputs(aws, "training")["StateMachineArn"]
    definition = json.loads(aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])
    quota = {"code": "L-TEST", "name": "test", "source": "applied"}
    quotas = {
        k: {**quota, "key": k, "value": v} for k, v in (("training", 2), ("warm_pool", 2), ("max_runtime", 432000))
    }
    request = preview(definition, _seed_run_inputs()[source], quotas=quotas).request
    assert request is not None
    assert request["ResourceConfig"]["InstanceType"] == "ml.p4de.24xlarge"
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    request["TrainingJobName"] = job_name("seed")
    state_machine_sagemaker.create_training_job(**request)
    _created_then_stopped(aws, request["TrainingJobName"])


# ------------------------------------------------------------------------------------ UpdateTrainingJob's rails


@pytest.fixture(scope="module")
def pool_cleanup_sagemaker(aws: Any) -> Any:
    arn = stack_outputs(aws, "training")["StateMachineArn"].replace(
        f":stateMachine:{NAMES.state_machine}", f":stateMachine:{NAMES.state_machine}-pool-cleanup"
    )
    role = aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["roleArn"]
    return role, role_client(aws.endpoint_url, aws.region, "sagemaker", role, "cleanup", assumer=assumer_of(role, arn))


@pytest.mark.parametrize("who", ["notebook", "pool cleanup"])
def test_update_training_job_is_refused_remote_debugging_and_a_keep_alive_above_the_ceiling(
    aws: Any, notebook: Any, pool_cleanup_sagemaker: Any, base_job: str, who: str
) -> None:
    role, client = (role_arn(NAMES.notebook_role), notebook) if who == "notebook" else pool_cleanup_sagemaker
    name = base_job.rsplit("/", 1)[-1]
    debug = {"EnableRemoteDebug": True}
    refused(
        lambda: client.update_training_job(TrainingJobName=name, RemoteDebugConfig=debug), "sagemaker:UpdateTrainingJob"
    )
    with keep_alive_ceiling(aws, role.rsplit("/", 1)[-1], 600):
        refused(
            lambda: client.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 601}),
            "sagemaker:UpdateTrainingJob",
        )
        # Ending a pool (keep-alive 0) stays allowed: IAM lets it through to SageMaker.
        try:
            client.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
        except ClientError as error:
            # The base job has no pool left to end: SageMaker's answer, not IAM's.
            assert error.response["Error"]["Code"] == "ValidationException", error


def test_the_notebook_role_cannot_change_a_platform_tag_later(aws: Any, notebook: Any, base_job: str) -> None:
    tags = [{"Key": COST_CENTRE, "Value": "CC-9999"}]
    refused(lambda: notebook.add_tags(ResourceArn=base_job, Tags=tags), "sagemaker:AddTags")
    current = aws.client("sagemaker").list_tags(ResourceArn=base_job)["Tags"]
    assert {"Key": COST_CENTRE, "Value": CONFIG.platform_tags[COST_CENTRE]} in current


# ------------------------------------------------------------------------------------ the state machine's role


@pytest.fixture(scope="module")
def state_machine_sagemaker(aws: Any) -> Any:
    arn = stack_outputs(aws, "training")["StateMachineArn"]
    role = aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["roleArn"]
    return role_client(aws.endpoint_url, aws.region, "sagemaker", role, "pipeline", assumer=assumer_of(role, arn))


@pytest.mark.parametrize(
    ("change", "edit"),
    [
        ("a name outside the prefix", lambda aws, r: r.update(TrainingJobName=f"other-{uuid.uuid4().hex[:6]}")),
        ("no VpcConfig", lambda aws, r: r.pop("VpcConfig")),
        ("another output key", _another_output_key),
    ],
    ids=["a name outside the prefix", "no VpcConfig", "another output key"],
)
def test_the_state_machine_role_is_refused_a_job_with(
    aws: Any, state_machine_sagemaker: Any, change: str, edit: Callable[[Any, Request], None]
) -> None:
    request = conforming_request(aws, job_name("sm"))
    edit(aws, request)
    refused(lambda: state_machine_sagemaker.create_training_job(**request), "sagemaker:CreateTrainingJob")
    assert_no_job(aws, request["TrainingJobName"])


def test_the_state_machine_role_may_send_the_conforming_request(aws: Any, state_machine_sagemaker: Any) -> None:
    """The refusals above are the change's, not the role's: the same request unchanged is created (and stopped)."""
    name = job_name("sm-ok")
    state_machine_sagemaker.create_training_job(**conforming_request(aws, name))
    with contextlib.suppress(ClientError):
        aws.client("sagemaker").stop_training_job(TrainingJobName=name)
    wait_for_job(aws.client("sagemaker"), name, timeout=300)


# ------------------------------------------------------------------------------------------ the execution role


def execution(aws: Any, service: str) -> Any:
    role = role_arn(NAMES.execution_role)
    return role_client(aws.endpoint_url, aws.region, service, role, "job", assumer=assumer_of(role))


def test_the_execution_role_reads_nothing_outside_the_platform_buckets(aws: Any) -> None:
    s3 = aws.client("s3")
    other = f"guard-other-{uuid.uuid4().hex[:6]}"
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="datasets/x.txt", Body=b"x")
    job_s3 = execution(aws, "s3")
    refused(lambda: job_s3.get_object(Bucket=other, Key="datasets/x.txt"), "s3:GetObject", code="AccessDenied")
    # The same call inside the data bucket is allowed: the bucket is what refused.
    s3.put_object(Bucket=NAMES.data_bucket, Key="datasets/guard-x.txt", Body=b"x")
    assert job_s3.get_object(Bucket=NAMES.data_bucket, Key="datasets/guard-x.txt")["Body"].read() == b"x"


def test_the_execution_role_deletes_no_output(aws: Any, base_job: str) -> None:
    name = base_job.rsplit("/", 1)[-1]
    key = f"output/{name}/output/model.tar.gz"
    aws.client("s3").head_object(Bucket=NAMES.artifacts_bucket, Key=key)
    job_s3 = execution(aws, "s3")
    refused(
        lambda: job_s3.delete_object(Bucket=NAMES.artifacts_bucket, Key=key), "s3:DeleteObject", code="AccessDenied"
    )
    aws.client("s3").head_object(Bucket=NAMES.artifacts_bucket, Key=key)


def test_the_execution_role_uses_the_platform_key_only_through_services(aws: Any) -> None:
    """kms:ViaService: the key encrypts and decrypts for S3 and SageMaker (the conforming job did both), never
    for the job's own code calling KMS."""
    key = stack_outputs(aws, "storage")["KmsKeyArn"]
    job_kms = execution(aws, "kms")
    refused(lambda: job_kms.generate_data_key(KeyId=key, KeySpec="AES_256"), "kms:GenerateDataKey")
    blob = aws.client("kms").encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    refused(lambda: job_kms.decrypt(KeyId=key, CiphertextBlob=blob), "kms:Decrypt")


def test_the_execution_role_grants_the_key_only_to_aws_services(aws: Any) -> None:
    key = stack_outputs(aws, "storage")["KmsKeyArn"]
    grantee = role_arn(NAMES.notebook_role)
    job_kms = execution(aws, "kms")
    refused(
        lambda: job_kms.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Decrypt"]), "kms:CreateGrant"
    )


def test_the_execution_role_does_not_create_log_groups(aws: Any) -> None:
    job_logs = execution(aws, "logs")
    for group in ("/aws/sagemaker/TrainingJobs", f"/guard/{uuid.uuid4().hex[:6]}"):
        refused(lambda group=group: job_logs.create_log_group(logGroupName=group), "logs:CreateLogGroup")


def test_the_execution_role_publishes_metrics_only_in_the_training_namespace(aws: Any) -> None:
    job_cloudwatch = execution(aws, "cloudwatch")
    metric = [{"MetricName": "guard", "Value": 1.0}]
    job_cloudwatch.put_metric_data(Namespace="/aws/sagemaker/TrainingJobs", MetricData=metric)
    refused(
        lambda: job_cloudwatch.put_metric_data(Namespace="Other/Namespace", MetricData=metric),
        "cloudwatch:PutMetricData",
    )


# ---------------------------------------------------------------------------------------- the bucket policies


@pytest.mark.parametrize("caller", ["execution role", "account"])
def test_the_buckets_refuse_objects_under_another_key(aws: Any, caller: str) -> None:
    """An explicit Deny in the bucket policy: it binds the account's own callers too, as on AWS."""
    other_key = aws.client("kms").create_key(Description="not the platform's")["KeyMetadata"]["Arn"]
    s3 = execution(aws, "s3") if caller == "execution role" else aws.client("s3")
    key = f"output/guard-{uuid.uuid4().hex[:6]}/model.tar.gz"
    message = refused(
        lambda: s3.put_object(
            Bucket=NAMES.artifacts_bucket, Key=key, Body=b"m", ServerSideEncryption="aws:kms", SSEKMSKeyId=other_key
        ),
        "s3:PutObject",
        code="AccessDenied",
    )
    assert "with an explicit deny in a resource-based policy" in message, message
    with pytest.raises(ClientError):
        aws.client("s3").head_object(Bucket=NAMES.artifacts_bucket, Key=key)
