"""The deployed state machine on the embedded AWS, started as a console user would (StartExecution with JSON).

Each run goes all the way: validation, real quota calls, CreateTrainingJob.sync, the packaged entry point
under the real sagemaker-training toolkit, the model artifact in S3."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainstack.config import ResourceNames, load_environment
from trainstack.embedded_aws.testing import throttle, time_scale, upload_script
from trainstack.local_platform import stage_demo_data

pytestmark = pytest.mark.slow
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
QUICK = {"max_steps": 4, "logging_steps": 2, "eval_steps": 4, "save_steps": 4}


@dataclass
class Platform:
    aws: Any
    state_machine_arn: str
    topic_arn: str

    def client(self, service: str) -> Any:
        return self.aws.client(service)


@pytest.fixture(scope="module")
def platform(deployed_local_platform, tiny_model_dir) -> Platform:
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    # Warm pools left by other test modules would shift the quota arithmetic these tests pin down.
    sagemaker = aws.client("sagemaker")
    for job in sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]:
        sagemaker.update_training_job(
            TrainingJobName=job["TrainingJobName"], ResourceConfig={"KeepAlivePeriodInSeconds": 0}
        )
    stack = aws.client("cloudformation").describe_stacks(StackName=NAMES.stack("training"))["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    return Platform(aws=aws, state_machine_arn=outputs["StateMachineArn"], topic_arn=outputs["NotificationTopicArn"])


@pytest.fixture(scope="module")
def tiny_code(platform: Platform) -> dict[str, str]:
    """A run's own code package whose script only writes a model file, for tests about what the pipeline decides
    (capacity, pools, quotas, names) rather than what trains: the packaged training code (torch on every host)
    costs a minute of CPU per multi-instance run, and test_empty_input_trains_... proves it end to end."""
    script = "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text('ok')\n"
    return {"package": upload_script(platform.client("s3"), NAMES.artifacts_bucket, script), "entry_point": "train.py"}


def run(platform: Platform, run_input: Any, timeout: float = 300, name: str | None = None) -> dict:
    sfn = platform.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=platform.state_machine_arn,
        name=name or f"test-{uuid.uuid4().hex[:12]}",
        input=json.dumps(run_input),
    )
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        assert time.monotonic() < deadline, f"execution still running after {timeout}s"
        time.sleep(0.5)


def _job_count(platform: Platform) -> int:
    return len(platform.client("sagemaker").list_training_jobs(MaxResults=100)["TrainingJobSummaries"])


def _output(described: dict) -> dict:
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    return json.loads(described["output"])


@pytest.fixture(scope="module")
def default_run(platform: Platform) -> dict:
    """`{}` — the console's empty input: the environment's defaults, keep-alive 300 s on ml.m5.xlarge."""
    return _output(run(platform, {}))


def test_empty_input_trains_the_packaged_entry_point_to_a_model_artifact(platform: Platform, default_run: dict) -> None:
    assert default_run["status"] == "Completed"
    bucket, key = default_run["modelArtifacts"].removeprefix("s3://").split("/", 1)
    assert bucket == NAMES.artifacts_bucket and key.endswith("/output/model.tar.gz")
    assert platform.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 10_000
    job = platform.client("sagemaker").describe_training_job(TrainingJobName=default_run["jobName"])
    assert job["HyperParameters"]["sagemaker_program"] == '"run_train.py"'
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 172800
    assert default_run["warmPool"]["granted"] == 300 and default_run["warmPool"]["status"] == "Available"
    assert default_run["quotas"]["training"]["value"] == 4
    assert default_run["trainingSeconds"] > 0 and default_run["billableSeconds"] >= default_run["trainingSeconds"]


def test_the_run_leaves_tensorboard_events_with_its_loss_under_the_platform_key(
    platform: Platform, default_run: dict, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    s3 = platform.client("s3")
    prefix = f"output/{default_run['jobName']}/tensorboard/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=NAMES.artifacts_bucket, Prefix=prefix).get("Contents", [])]
    events = [key for key in keys if "tfevents" in key.rsplit("/", 1)[-1]]
    # events.out.tfevents.<time>.<host>.<pid>.<n>: one process (world rank 0) wrote them all; transformers
    # opens a second file for the evaluation logged after training ends.
    assert events and len({key.rsplit(".", 2)[-2] for key in events}) == 1, keys
    kms_key = platform.client("sagemaker").describe_training_job(TrainingJobName=default_run["jobName"])[
        "OutputDataConfig"
    ]["KmsKeyId"]
    for key in events:
        head = s3.head_object(Bucket=NAMES.artifacts_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms_key
        s3.download_file(NAMES.artifacts_bucket, key, str(tmp_path / key.rsplit("/", 1)[-1]))
    # The folder, as TensorBoard reads a run.
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    losses = accumulator.Scalars("train/loss")
    assert losses and all(loss.value > 0 for loss in losses)


def test_overrides_arrive_in_the_job_and_a_retained_pool_uses_up_the_headroom(
    platform: Platform, default_run: dict
) -> None:
    result = _output(
        run(
            platform,
            {
                "instance_count": 2,
                "hyperparameters": {**QUICK, "learning_rate": 0.002},
                "environment": {"TRAINSTACK_MARK": "from-the-console"},
            },
        )
    )
    job = platform.client("sagemaker").describe_training_job(TrainingJobName=result["jobName"])
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["HyperParameters"]["learning_rate"] == "0.002" and job["HyperParameters"]["max_steps"] == "4"
    assert job["Environment"]["TRAINSTACK_MARK"] == "from-the-console" and job["Environment"]["NODE_NUMBER"] == "2"
    assert job["EnableInterContainerTrafficEncryption"] is True
    streams = platform.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=result["jobName"]
    )["logStreams"]
    assert {s["logStreamName"].split("/")[1].rsplit("-", 1)[0] for s in streams} == {"algo-1", "algo-2"}
    # The `{}` run keeps one ml.m5.xlarge in a pool; quota 2 leaves room for one more, not two.
    warm = result["warmPool"]
    assert warm["granted"] == 0 and warm["retained"] >= 1 and "would exceed it" in warm["reason"]
    assert "KeepAlivePeriodInSeconds" not in job["ResourceConfig"]


@pytest.mark.parametrize(
    ("run_input", "cause"),
    [
        ("not an object", "input: expected a JSON object"),
        ({"instance_type": "ml.c6i.xlarge"}, 'family "c6i", which this environment does not allow'),
        ({"instance_count": 5}, "instance_count: expected a whole number from 1 to 4, got 5"),
        ({"channels": {"train": "s3://elsewhere/data/"}}, "is outside the platform's data bucket"),
        ({"hyperparameters": [1, 2]}, "hyperparameters: expected an object"),
        ({"keep_alive_seconds": 7200}, "keep_alive_seconds: expected a whole number from 0 to 3600, got 7200"),
        ({"spot": True, "keep_alive_seconds": 60}, "warm pools are not available with spot training"),
        # The run input cannot take over the job (issue 10): redirect the toolkit's code download, replace a
        # platform-set variable, read outside the data bucket, or claim another cost centre.
        (
            {"environment": {"S3_ENDPOINT_URL": "http://198.51.100.7:9000"}},
            "environment.S3_ENDPOINT_URL: a run may not",
        ),
        ({"environment": {"NODE_NUMBER": "8"}}, "environment.NODE_NUMBER: a run may not set it: set by the platform"),
        (
            {"hyperparameters": {"model_s3_uri": "s3://attacker-bucket/weights/"}},
            'hyperparameters.model_s3_uri: "s3://attacker-bucket/weights/" names S3 bucket(s) attacker-bucket outside',
        ),
        (
            {"tags": {"trainstack:cost-centre": "CC-9999"}},
            "tags.trainstack:cost-centre: tags starting with trainstack: are set by the platform",
        ),
        ({"tags": {"stage": "retrain(v2)"}}, 'tags.stage: "retrain(v2)" is not a tag value'),
        ({"environment": {"NCCL_NOTES": "e" * 600}}, "environment: NCCL_NOTES: values are at most 512 characters"),
        # Issue 20: variables that run code before the entry point, or reach the rendezvous, by the allow-list's
        # rule; limits on the request SageMaker would get; channels it would misread.
        (
            {"environment": {"PYTHONWARNINGS": "ignore::antigravity.X", "BROWSER": "/bin/sh"}},
            "environment.PYTHONWARNINGS: a run may not set it: interpreters and tools run code",
        ),
        ({"environment": {"PERL5OPT": "-Mstrict"}}, "environment.PERL5OPT: a run may not set it: "),
        ({"environment": {"CA_REPOSITORY_ARN": "arn:aws:codeartifact:x"}}, "[environment-allow-list]"),
        ({"environment": {"MASTER_ADDR": "198.51.100.7", "MASTER_PORT": "1"}}, "environment.MASTER_PORT: a run may"),
        ({"environment": {"MY_FLAG": "1"}}, "environment.MY_FLAG: not on the allow-list; a run may set"),
        ({"hyperparameters": {f"h{i}": 1 for i in range(95)}}, "[hyperparameters-final-count]"),
        ({"hyperparameters": {"a=b": 1}}, "hyperparameters.a=b: names are 1 to 256 characters without '='"),
        ({"hyperparameters": {"note": "a\u0000b"}}, "[hyperparameter-value-nul]"),
        ({"channels": {"TRAIN": "datasets/train/"}}, "channels: train, TRAIN: channel names must differ"),
        ({"channels": {"extra": "S3://other-bucket/x/"}}, "[channel-shape]"),
    ],
)
def test_invalid_input_fails_before_any_job_is_created(platform: Platform, run_input: Any, cause: str) -> None:
    before = _job_count(platform)
    described = run(platform, run_input)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidInput"
    assert cause in described["cause"]
    assert _job_count(platform) == before


def test_an_execution_named_with_parentheses_trains_with_a_valid_execution_tag(
    platform: Platform, tiny_code: dict[str, str]
) -> None:
    # Execution names allow characters tag values do not; SageMaker (and the embedded AWS) would refuse the job.
    name = f"retrain(v2)-{uuid.uuid4().hex[:6]}"
    # The embedded AWS checks every tag against SageMaker's pattern at CreateTrainingJob (a raw "retrain(v2)"
    # value is refused there, tests/test_sagemaker_request_rules.py), so a created, completed job is the proof;
    # the tag's exact value is pinned by tests/test_run_input_rules.py (moto's ListTags fails on training jobs).
    result = _output(run(platform, {"code": tiny_code, "keep_alive_seconds": 0}, name=name))
    assert result["status"] == "Completed"
    job = platform.client("sagemaker").describe_training_job(TrainingJobName=result["jobName"])
    assert job["TrainingJobStatus"] == "Completed"


def test_training_quota_zero_fails_with_quota_exceeded_naming_the_quota(platform: Platform) -> None:
    before = _job_count(platform)
    described = run(platform, {"instance_type": "ml.c5.xlarge"})
    assert described["error"] == "QuotaExceeded"
    assert (
        '"ml.c5.xlarge for training job usage" (L-' in described["cause"]
        and "asks for 1 instance" in described["cause"]
    )
    assert _job_count(platform) == before


def test_max_runtime_beyond_the_longest_run_time_quota_fails(platform: Platform) -> None:
    described = run(platform, {"max_runtime_seconds": 6 * 24 * 3600})
    assert described["error"] == "QuotaExceeded"
    assert '"Longest run time for a training job" (L-33A961FD) is 432000' in described["cause"]


def test_warm_pool_quota_zero_runs_the_job_without_a_pool(platform: Platform, tiny_code: dict[str, str]) -> None:
    result = _output(run(platform, {"instance_type": "ml.m5.2xlarge", "code": tiny_code}))
    assert result["status"] == "Completed"
    assert result["warmPool"]["granted"] == 0 and result["warmPool"]["status"] == "None"
    assert "is 0 in this account" in result["warmPool"]["reason"]


def test_a_free_pool_is_kept_and_the_next_matching_run_reuses_it(platform: Platform, tiny_code: dict[str, str]) -> None:
    # ml.p4de.24xlarge is missing from the public quota table: its codes come from paging ListServiceQuotas.
    run_input = {"instance_type": "ml.p4de.24xlarge", "keep_alive_seconds": 600, "code": tiny_code}
    first = _output(run(platform, run_input))
    assert first["warmPool"]["granted"] == 600 and first["warmPool"]["status"] == "Available"
    listed = {
        q["QuotaName"]: q["QuotaCode"]
        for page in platform.client("service-quotas")
        .get_paginator("list_service_quotas")
        .paginate(ServiceCode="sagemaker")
        for q in page["Quotas"]
    }
    assert first["quotas"]["training"]["code"] == listed["ml.p4de.24xlarge for training job usage"]
    assert first["quotas"]["warm_pool"]["code"] == listed["ml.p4de.24xlarge for training warm pool usage"]

    second = _output(run(platform, run_input))
    assert second["warmPool"]["granted"] == 600 and second["warmPool"]["reusable_pool"] == first["jobName"]
    pool = platform.client("sagemaker").describe_training_job(TrainingJobName=first["jobName"])["WarmPoolStatus"]
    assert pool["Status"] == "Reused" and pool["ReusedByJob"] == second["jobName"]


def test_a_failing_script_fails_the_execution_with_its_reason_and_a_notification(platform: Platform) -> None:
    sqs, sns, s3 = platform.client("sqs"), platform.client("sns"), platform.client("s3")
    queue_url = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=platform.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    s3.put_object(Bucket=NAMES.data_bucket, Key="datasets/corrupt/train.jsonl", Body=b'{"text": "fine"}\nnot json\n')

    described = run(platform, {"channels": {"train": "datasets/corrupt/"}, "keep_alive_seconds": 0})
    assert described["status"] == "FAILED"
    assert described["error"] == "TrainingJobFailed"
    assert "train.jsonl line 2: not valid JSON" in described["cause"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    notification = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert notification["error"] == "TrainingJobFailed" and "not valid JSON" in notification["reason"]


# --- SageMaker's own answers, as the state machine receives them ------------------------------------------------


def _task_failures(platform: Platform, described: dict) -> list[dict]:
    events = platform.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"], maxResults=1000
    )["events"]
    return [event["taskFailedEventDetails"] for event in events if event["type"] == "TaskFailed"]


def _release_pools(platform: Platform) -> None:
    sagemaker = platform.client("sagemaker")
    for job in sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]:
        sagemaker.update_training_job(
            TrainingJobName=job["TrainingJobName"], ResourceConfig={"KeepAlivePeriodInSeconds": 0}
        )


def test_a_throttled_create_training_job_is_retried_and_the_run_trains(platform: Platform) -> None:
    throttle(platform.aws.endpoint_url, "SageMaker.CreateTrainingJob", 1)
    with time_scale(platform.aws.endpoint_url, 0.1):  # WaitToRetryTrain: 1 to 6 s
        described = run(platform, {"hyperparameters": QUICK, "keep_alive_seconds": 0})
    assert _output(described)["status"] == "Completed"
    (failure,) = _task_failures(platform, described)
    assert failure["error"] == "SageMaker.AmazonSageMakerException"
    assert failure["cause"].startswith("Rate exceeded (Service: AmazonSageMaker; Status Code: 400; ")
    assert "Error Code: ThrottlingException" in failure["cause"]


# Requests SageMaker would refuse for their shape (these two reached it as TrainingJobRejected before the
# rulebook): Validate now computes the final request and refuses them first, naming the rule, with no job.
REJECTED = {
    "300-character hyperparameter name": (
        {"hyperparameters": {"h" * 300: 1}},
        "[hyperparameter-names]",
    ),
    "21 channels": (
        {"channels": {f"extra{index}": "datasets/sample/train/" for index in range(18)}},
        "[channels-final-count]",
    ),
}


@pytest.mark.parametrize(("run_input", "rule"), list(REJECTED.values()), ids=list(REJECTED))
def test_a_request_sagemaker_would_refuse_is_refused_by_validate_before_any_job(
    platform: Platform, run_input: dict, rule: str
) -> None:
    jobs_before = _job_count(platform)
    described = run(platform, {**run_input, "keep_alive_seconds": 0})
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidInput"
    assert rule in described["cause"], described["cause"]
    assert _task_failures(platform, described) == []
    assert _job_count(platform) == jobs_before
