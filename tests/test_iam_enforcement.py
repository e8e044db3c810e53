"""IAM in the embedded AWS, through the deployed platform: a grant taken away makes a real run fail with
AccessDenied, as it would on AWS; the notebook role and an operator-only user get what their policies give.

Each test edits a deployed role's inline policy (`iam.put_role_policy`, as a console user would), starts a
real execution or job, and restores the policy afterwards.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import assumer_of, role_arn, stack_outputs
from test_guard_rails_enforced import conforming_request

from trainstack.config import ResourceNames, load_environment
from trainstack.embedded_aws.assumed_role_credentials import role_client
from trainstack.embedded_aws.testing import ROLE, job_request, upload_script, wait_for_execution, wait_for_job
from trainstack.local_platform import stage_demo_data

pytestmark = pytest.mark.slow
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
# A short run on a type without warm-pool quota: nothing is retained that other tests would count.
QUICK_RUN = {
    "instance_type": "ml.m5.2xlarge",
    "hyperparameters": {"max_steps": 2, "logging_steps": 1, "eval_steps": 2, "save_steps": 2},
}


@pytest.fixture(scope="module")
def aws(deployed_local_platform: Any, tiny_model_dir: Any) -> Any:
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    return aws


@pytest.fixture(scope="module")
def state_machine(aws: Any) -> dict[str, str]:
    arn = stack_outputs(aws, "training")["StateMachineArn"]
    role = aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["roleArn"]
    return {"arn": arn, "role": role.rsplit("/", 1)[-1]}


@contextlib.contextmanager
def edited_policies(aws: Any, role: str, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Every inline policy of `role` passed through `edit` (which changes the document in place); restored after."""
    iam = aws.client("iam")
    originals = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    try:
        for name, document in originals.items():
            changed = json.loads(json.dumps(document))
            edit(changed)
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(changed))
        yield
    finally:
        for name, document in originals.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def without_action(action: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != action] or ["sts:GetCallerIdentity"]

    return edit


def without_statement(sid: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]

    return edit


def start(aws: Any, state_machine_arn: str) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=f"iam-{uuid.uuid4().hex[:12]}", input=json.dumps(QUICK_RUN)
    )
    return wait_for_execution(sfn, execution["executionArn"], timeout=300)


def failed_task_causes(aws: Any, execution_arn: str) -> list[str]:
    events = aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"].get("cause", "") for e in events if "taskFailedEventDetails" in e]


def _finish_jobs(aws: Any, prefix: str) -> None:
    """A job the test left running (its execution failed after creating it) is stopped and waited for."""
    sagemaker = aws.client("sagemaker")
    for job in sagemaker.list_training_jobs(StatusEquals="InProgress", MaxResults=100)["TrainingJobSummaries"]:
        if job["TrainingJobName"].startswith(prefix):
            with contextlib.suppress(ClientError):
                sagemaker.stop_training_job(TrainingJobName=job["TrainingJobName"])
            wait_for_job(sagemaker, job["TrainingJobName"])


def test_state_machine_without_list_tags_fails_with_access_denied(aws: Any, state_machine: dict[str, str]) -> None:
    """`.sync` reads the job's tags as the state machine's role (AWS: "IAM policies for SageMaker AI")."""
    with edited_policies(aws, state_machine["role"], without_action("sagemaker:ListTags")):
        described = start(aws, state_machine["arn"])
    _finish_jobs(aws, CONFIG.training.job_name_prefix)
    assert described["status"] == "FAILED"
    causes = failed_task_causes(aws, described["executionArn"])
    assert any(
        f":assumed-role/{state_machine['role']}/" in cause
        and "is not authorized to perform: sagemaker:ListTags on resource: arn:aws:sagemaker:" in cause
        and "because no identity-based policy allows the sagemaker:ListTags action" in cause
        for cause in causes
    ), causes


def test_state_machine_without_pass_role_creates_no_job(aws: Any, state_machine: dict[str, str]) -> None:
    sagemaker = aws.client("sagemaker")
    before = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    with edited_policies(aws, state_machine["role"], without_statement("PassExecutionRole")):
        described = start(aws, state_machine["arn"])
    assert described["status"] == "FAILED"
    causes = failed_task_causes(aws, described["executionArn"])
    passed = role_arn(NAMES.execution_role)
    assert any(f"is not authorized to perform: iam:PassRole on resource: {passed}" in c for c in causes), causes
    assert len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == before


def test_execution_role_without_data_read_fails_the_job(aws: Any, state_machine: dict[str, str]) -> None:
    with edited_policies(aws, NAMES.execution_role, without_statement("ReadTrainingData")):
        described = start(aws, state_machine["arn"])
    assert described["status"] == "FAILED"
    jobs = aws.client("sagemaker").list_training_jobs(SortOrder="Descending", MaxResults=1)["TrainingJobSummaries"]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=jobs[0]["TrainingJobName"])
    assert job["TrainingJobStatus"] == "Failed"
    # boto3 downloads with HeadObject first: S3 answers a refused HEAD with a bare 403, on AWS as here.
    assert job["FailureReason"].startswith("ClientError:") and "403" in job["FailureReason"], job["FailureReason"]
    execution_role = role_arn(NAMES.execution_role)
    refused = [e for e in aws.iam.log.snapshot() if e.entity_arn == execution_role and not e.allowed]
    assert any(
        e.action == "s3:GetObject" and e.resource.startswith(f"arn:aws:s3:::{NAMES.data_bucket}/") for e in refused
    ), refused


def test_a_job_writing_output_under_another_kms_key_fails(aws: Any) -> None:
    """An output under another KMS key is refused twice over: the bucket policy denies PutObject under any key but
    the platform's (checked first, as S3 does), and the execution role has no kms:GenerateDataKey on other keys."""
    other_key = aws.client("kms").create_key(Description="not the platform's")["KeyMetadata"]["Arn"]
    outputs = stack_outputs(aws, "training")
    name = f"{CONFIG.training.job_name_prefix}-otherkey-{uuid.uuid4().hex[:6]}"
    script = "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text('m')\n"
    code = upload_script(aws.client("s3"), NAMES.artifacts_bucket, script)  # under code/, which the role may read
    output = {"S3OutputPath": f"s3://{NAMES.artifacts_bucket}/output", "KmsKeyId": other_key}
    request = job_request(
        name, NAMES.artifacts_bucket, code, RoleArn=outputs["ExecutionRoleArn"], OutputDataConfig=output
    )
    sagemaker = aws.client("sagemaker")
    sagemaker.create_training_job(**request)
    job = wait_for_job(sagemaker, name, timeout=300)
    assert job["TrainingJobStatus"] == "Failed", job.get("FailureReason")
    reason = job["FailureReason"]
    assert "is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::" + NAMES.artifacts_bucket in reason
    assert "with an explicit deny in a resource-based policy" in reason


def test_notebook_role_cannot_delete_artifacts_or_pass_other_roles(aws: Any) -> None:
    role = role_arn(NAMES.notebook_role)
    s3 = role_client(aws.endpoint_url, aws.region, "s3", role, "notebook", assumer=assumer_of(role))
    with pytest.raises(ClientError) as denied:
        s3.delete_object(Bucket=NAMES.artifacts_bucket, Key="output/anything")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert f"assumed-role/{NAMES.notebook_role}/notebook is not authorized to perform: s3:DeleteObject" in str(
        denied.value
    )
    sagemaker = role_client(aws.endpoint_url, aws.region, "sagemaker", role, "notebook", assumer=assumer_of(role))
    # Inside every CreateTrainingJob guard rail but for the role: PassRole is what refuses it.
    name = f"{CONFIG.training.job_name_prefix}-nb-{uuid.uuid4().hex[:6]}"
    request = conforming_request(aws, name, RoleArn=ROLE)  # testing.ROLE is not the platform's execution role
    with pytest.raises(ClientError) as refused:
        sagemaker.create_training_job(**request)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"is not authorized to perform: iam:PassRole on resource: {ROLE}" in str(refused.value)


def test_an_unmapped_request_of_a_role_is_refused_naming_it(aws: Any) -> None:
    role = role_arn(NAMES.notebook_role)
    ec2 = role_client(aws.endpoint_url, aws.region, "ec2", role, "notebook", assumer=assumer_of(role))
    with pytest.raises(ClientError) as refused:
        ec2.describe_vpcs()
    assert "cannot map 'ec2 POST /" in str(refused.value) and "ec2:DescribeVpcs" in str(refused.value)


def test_unknown_access_keys_are_refused(aws: Any) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id="AKIANOTISSUED0000000",
        aws_secret_access_key="x",
    )
    with pytest.raises(ClientError) as refused:
        s3.list_objects_v2(Bucket=NAMES.data_bucket)
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_condition_keys_of_create_training_job_are_enforced(aws: Any) -> None:
    """A guard rail on sagemaker:InstanceTypes / KeepAlivePeriod (the keys SageMaker documents) refuses the
    request when the request's values break it."""
    iam = aws.client("iam")
    name = f"iam-guard-{uuid.uuid4().hex[:6]}"
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    job_arn = NAMES.arn("sagemaker", "training-job/*")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sagemaker:CreateTrainingJob", "iam:PassRole"], "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": job_arn,
                "Condition": {"ForAnyValue:StringLike": {"sagemaker:InstanceTypes": ["ml.p*"]}},
            },
            {
                "Effect": "Deny",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": job_arn,
                "Condition": {"NumericGreaterThan": {"sagemaker:KeepAlivePeriod": "1800"}},
            },
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="guard", PolicyDocument=json.dumps(policy))
    sagemaker = role_client(
        aws.endpoint_url, aws.region, "sagemaker", role_arn(name), "guard", assumer=assumer_of(name)
    )
    resources = {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    for resource_config in (resources, {**resources, "InstanceType": "ml.m5.large", "KeepAlivePeriodInSeconds": 3600}):
        request = job_request(f"guard-{uuid.uuid4().hex[:6]}", NAMES.data_bucket, "s3://x/y")
        request["ResourceConfig"] = resource_config
        with pytest.raises(ClientError) as refused:
            sagemaker.create_training_job(**request)
        assert "with an explicit deny in an identity-based policy" in str(refused.value)


@pytest.mark.after_platform_runs
def test_every_platform_grant_is_exercised_or_explained(aws: Any, request: pytest.FixtureRequest) -> None:
    """Least privilege, measured: each granted (action, resource) of the state machine, the execution role and
    the notebook role was used by some call in this session (on any worker), or
    `trainstack/platform/unexercised_grants.py` says why not."""
    from conftest import expected_platform_groups, least_privilege_tables

    from trainstack.platform.unexercised_grants import UNEXERCISED_GRANTS

    modules = {item.module.__name__ for item in request.session.items if item.module is not None}
    needed = {"test_pipeline_executions", "test_notebooks", "test_cli"}
    if not needed <= modules:
        pytest.skip(f"the grants are exercised by {sorted(needed)}; run them in the same session")
    # With several workers, each deployed the platform for its group of modules: their uses count too.
    tables = least_privilege_tables(aws, wait_for=expected_platform_groups(request.session))
    assert set(tables) == {"state machine", "execution role", "notebook role"}
    unexplained = [
        f"{key}: {row.sid} {row.action} on {row.resource}"
        for key, rows in tables.items()
        for row in rows
        if not row.exercised and (key, row.action) not in UNEXERCISED_GRANTS
    ]
    assert not unexplained, (
        "grants no test used and trainstack/platform/unexercised_grants.py does not explain:\n" + "\n".join(unexplained)
    )
    stale = [key for key in UNEXERCISED_GRANTS if not any(row.action == key[1] for row in tables.get(key[0], []))]
    assert not stale, f"trainstack/platform/unexercised_grants.py explains grants that no longer exist: {stale}"


def test_an_operator_only_user_reads_runs_but_cannot_start_one(aws: Any) -> None:
    """The CLI as an IAM user with an operator's read-only policy: `status` works, `run` is refused as AWS
    refuses it, in one sentence."""
    from typer.testing import CliRunner

    from trainstack.cli import app

    iam = aws.client("iam")
    user = f"operator-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    read_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "states:ListExecutions",
                    "states:DescribeExecution",
                    "states:DescribeStateMachine",
                    "states:GetExecutionHistory",
                    "sagemaker:ListTrainingJobs",
                    "sagemaker:DescribeTrainingJob",
                    "servicequotas:GetServiceQuota",
                    "servicequotas:GetAWSDefaultServiceQuota",
                    "servicequotas:ListServiceQuotas",
                ],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="operator-read-only", PolicyDocument=json.dumps(read_only))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    env = {**aws.env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    status = CliRunner().invoke(app, ["status"], env=env)
    assert status.exit_code == 0, status.output
    started = CliRunner().invoke(app, ["run", "--instance-type", "ml.m5.2xlarge"], env=env)
    assert started.exit_code == 1, started.output
    assert "Access denied on StartExecution: User: arn:aws:iam::" in started.output
    assert f":user/{user} is not authorized to perform: states:StartExecution" in started.output.replace("\n", "")


def test_the_deployed_bucket_policy_is_enforced_as_a_resource_policy(aws: Any) -> None:
    """The data bucket's policy comes from CloudFormation (cloudformation_resource_policies.py); a Deny added
    to it refuses the notebook role's read, naming the resource-based policy, as S3 does."""
    s3 = aws.client("s3")
    original = s3.get_bucket_policy(Bucket=NAMES.data_bucket)["Policy"]
    policy = json.loads(original)
    assert any(
        s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in policy["Statement"]
    )
    key = "iam-test/object.txt"
    s3.put_object(Bucket=NAMES.data_bucket, Key=key, Body=b"x")
    notebook = role_client(
        aws.endpoint_url,
        aws.region,
        "s3",
        role_arn(NAMES.notebook_role),
        "notebook",
        assumer=assumer_of(role_arn(NAMES.notebook_role)),
    )
    assert notebook.get_object(Bucket=NAMES.data_bucket, Key=key)["Body"].read() == b"x"
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": role_arn(NAMES.notebook_role)},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{NAMES.data_bucket}/iam-test/*",
        }
    )
    s3.put_bucket_policy(Bucket=NAMES.data_bucket, Policy=json.dumps(policy))
    try:
        with pytest.raises(ClientError) as denied:
            notebook.get_object(Bucket=NAMES.data_bucket, Key=key)
    finally:
        s3.put_bucket_policy(Bucket=NAMES.data_bucket, Policy=original)
        s3.delete_object(Bucket=NAMES.data_bucket, Key=key)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:GetObject" in str(denied.value) and "with an explicit deny in a resource-based policy" in str(
        denied.value
    )


# ------------------------------------------------------------------------------------------ trust policies


def _assume(aws: Any, role: str, assumer: Any) -> Any:
    return assumer.sts_client(aws.endpoint_url, aws.region).assume_role(RoleArn=role, RoleSessionName="trust")


def _refused_assume(call: Callable[[], Any], caller: str, role: str) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "AccessDenied", refused.value.response
    assert refused.value.response["Error"]["Message"] == (
        f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"
    )


def test_the_account_itself_cannot_assume_a_role_that_trusts_only_a_service(aws: Any) -> None:
    """Before, anyone could assume any role offline; on AWS the trust policy must name the caller."""
    for name in (NAMES.notebook_role, NAMES.execution_role):
        role = role_arn(name)
        root = f"arn:aws:iam::{CONFIG.account}:root"
        _refused_assume(lambda role=role: aws.client("sts").assume_role(RoleArn=role, RoleSessionName="xx"), root, role)


def test_a_service_the_trust_policy_does_not_name_is_refused(aws: Any) -> None:
    from trainstack.embedded_aws.assumed_role_credentials import STEP_FUNCTIONS, Assumer

    role = role_arn(NAMES.execution_role)
    job = NAMES.arn("sagemaker", f"training-job/{CONFIG.training.job_name_prefix}-x")
    _refused_assume(lambda: _assume(aws, role, Assumer(STEP_FUNCTIONS, job)), STEP_FUNCTIONS, role)


def test_sagemaker_assumes_the_execution_role_only_for_the_environments_jobs(aws: Any) -> None:
    from trainstack.embedded_aws.assumed_role_credentials import SAGEMAKER, Assumer

    role = role_arn(NAMES.execution_role)
    ours = NAMES.arn("sagemaker", f"training-job/{CONFIG.training.job_name_prefix}-trust-1")
    assert _assume(aws, role, Assumer(SAGEMAKER, ours))["Credentials"]["AccessKeyId"]
    for source in (NAMES.arn("sagemaker", "training-job/another-team-job"), None):
        _refused_assume(lambda source=source: _assume(aws, role, Assumer(SAGEMAKER, source)), SAGEMAKER, role)


def test_step_functions_assumes_a_state_machine_role_only_for_that_machine(aws: Any) -> None:
    from trainstack.embedded_aws.assumed_role_credentials import STEP_FUNCTIONS, Assumer

    machine = stack_outputs(aws, "training")["StateMachineArn"]
    role = aws.client("stepfunctions").describe_state_machine(stateMachineArn=machine)["roleArn"]
    assert _assume(aws, role, Assumer(STEP_FUNCTIONS, machine))["Credentials"]["AccessKeyId"]
    other = machine.replace(f":stateMachine:{NAMES.state_machine}", ":stateMachine:someone-elses")
    _refused_assume(lambda: _assume(aws, role, Assumer(STEP_FUNCTIONS, other)), STEP_FUNCTIONS, role)


def test_a_role_trusting_the_account_needs_the_callers_own_permission(aws: Any) -> None:
    """A trust policy naming the account delegates to IAM: the caller's identity policy must allow AssumeRole."""
    iam = aws.client("iam")
    name = f"iam-trust-{uuid.uuid4().hex[:6]}"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": CONFIG.account}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    # The account's own (administrator) credentials hold every permission: allowed.
    assert aws.client("sts").assume_role(RoleArn=role_arn(name), RoleSessionName="admin")["Credentials"]
    # The notebook role has no sts:AssumeRole: refused, although the trust policy names its account.
    notebook = role_arn(NAMES.notebook_role)
    sts = role_client(aws.endpoint_url, aws.region, "sts", notebook, "notebook", assumer=assumer_of(notebook))
    session = f"arn:aws:sts::{CONFIG.account}:assumed-role/{NAMES.notebook_role}/notebook"
    _refused_assume(lambda: sts.assume_role(RoleArn=role_arn(name), RoleSessionName="xx"), session, role_arn(name))
