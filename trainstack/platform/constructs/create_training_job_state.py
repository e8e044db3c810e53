"""The CreateTrainingJob task: the request it sends and the IAM it needs, in one place.

CDK's `SageMakerCreateTrainingJob` cannot set KeepAlivePeriodInSeconds, checkpoints, spot, retry
strategy, inter-container encryption or CompressionType, and does not stringify hyperparameters, so
the request is rendered here as JSONata. It matches what the SageMaker SDK v2 `Estimator` sends in
script mode (sagemaker_program, sagemaker_submit_directory, sagemaker_container_log_level,
sagemaker_job_name, sagemaker_region; every hyperparameter value json.dumps-encoded; profiler off and
no debugger hook, as the seed's disable_profiler / debugger_hook_config=False), plus what the SDK path
makes awkward: KMS on volume and output, checkpoints, retries, encryption between nodes, VPC, tags.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.instance_storage import local_storage_families
from trainstack.platform.constructs.run_continuation import HISTORY_BUDGET
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.constructs.training_run_input import ENCODE_FUNCTION, TAG_CHARACTER_CLASS
from trainstack.platform.storage_stack import ARTIFACT_PREFIXES

SYNC_RESOURCE = "arn:aws:states:::sagemaker:createTrainingJob.sync"
# What the optimized integration names SageMaker errors its model lacks (ThrottlingException, ValidationException,
# AccessDeniedException); see trainstack/embedded_aws/README.md for the evidence.
ERROR_UNMODELLED = "SageMaker.AmazonSageMakerException"
ERROR_RESOURCE_LIMIT = "SageMaker.ResourceLimitExceededException"
ERROR_RESOURCE_IN_USE = "SageMaker.ResourceInUseException"
TRAIN_THROTTLE_RETRIES = 4
# Tag values allow letters, numbers, spaces and _.:/=+-@ only; execution names (1 to 80 characters) also allow
# ( ) ! ' and more, and letters of any script: every character outside the tag class becomes "_", so the value is
# valid for any execution name (at most 80 characters, well under the value's 256).
EXECUTION_TAG_UNSAFE = "/[^" + TAG_CHARACTER_CLASS + "]/"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# TensorBoardOutputConfig's default LocalPath, where training_code/ writes its event files.
TENSORBOARD_LOCAL_PATH = "/opt/ml/output/tensorboard"
# Step Functions' managed rule for `.sync` on SageMaker training jobs.
SYNC_EVENTS_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"


@dataclass(frozen=True)
class TrainingJobTarget:
    """Deploy-time values the request needs; strings may be CDK tokens (resolved by to_json_string)."""

    role_arn: str
    image_uri: str
    code_uri: str
    kms_key_arn: str
    subnet_ids: list[str] | None = None
    security_group_ids: list[str] | None = None


def _metric_definitions() -> list[dict[str, str]]:
    from training_code.metrics import METRIC_DEFINITIONS

    return METRIC_DEFINITIONS


def mlflow_environment(config: EnvironmentConfig) -> dict[str, str]:
    """What points the job's MLflow client at the environment's tracking server: the sagemaker-mlflow plugin
    takes the server's ARN as the tracking URI. Empty when the environment has none, so that a job without
    MLflow configured carries no MLFLOW_* variable (the run-input rules refuse them from a run either way)."""
    arn = config.training.mlflow_tracking_server_arn
    return {"MLFLOW_TRACKING_URI": arn, "MLFLOW_EXPERIMENT_NAME": config.name} if arn else {}


def request_expression(config: EnvironmentConfig, target: TrainingJobTarget) -> str:
    """JSONata over `$run`, `$jobName`, `$checkpointName` and `$warmPool`: the CreateTrainingJob request."""
    names = ResourceNames.of(config)
    training = config.training
    literal = lambda value: json.dumps(value, separators=(",", ":"))  # noqa: E731
    output_path = f"s3://{names.artifacts_bucket}/{ARTIFACT_PREFIXES['output']}"
    checkpoints = f"s3://{names.artifacts_bucket}/{ARTIFACT_PREFIXES['checkpoints']}"
    optional: list[str] = []
    mlflow = mlflow_environment(config)
    # Last in the merge: the platform's values win over a run's (the run-input rules refuse MLFLOW_* anyway).
    mlflow_env = f", {literal(mlflow)}" if mlflow else ""
    if training.checkpoints:
        optional.append(
            # Per run, not per job: a job retried under a new name resumes from its first attempt's checkpoints.
            f'{{"CheckpointConfig": {{"S3Uri": {literal(checkpoints)} & $checkpointName & "/",'
            f' "LocalPath": {literal(CHECKPOINT_LOCAL_PATH)}}}}}'
        )
    if target.subnet_ids:
        optional.append(
            f'{{"VpcConfig": {{"Subnets": {literal(target.subnet_ids)},'
            f' "SecurityGroupIds": {literal(target.security_group_ids)}}}}}'
        )
    return (
        "{% (\n"
        f"  {ENCODE_FUNCTION}\n"
        "  $n := $run.instance_count;\n"
        "  $merge([{\n"
        '    "TrainingJobName": $jobName,\n'
        f'    "RoleArn": {literal(target.role_arn)},\n'
        '    "AlgorithmSpecification": {\n'
        f'      "TrainingImage": $exists($run.image) ? $run.image : {literal(target.image_uri)},\n'
        '      "TrainingInputMode": "File",\n'
        f'      "MetricDefinitions": {literal(_metric_definitions())},\n'
        '      "EnableSageMakerMetricsTimeSeries": true\n'
        "    },\n"
        '    "HyperParameters": $merge([\n'
        "      $each($run.hyperparameters, function($v, $k) { {$k: $enc($v)} }),\n"
        "      {\n"
        # A run's own `code` replaces the packaged training_code/ and the configured entry point.
        f'        "sagemaker_program": $enc($exists($run.code) ? $run.code.entry_point'
        f" : {literal(training.entry_point)}),\n"
        f'        "sagemaker_submit_directory": $enc($exists($run.code.package) ? $run.code.package'
        f" : {literal(target.code_uri)}),\n"
        f'        "sagemaker_container_log_level": $enc({training.container_log_level}),\n'
        '        "sagemaker_job_name": $enc($jobName),\n'
        f'        "sagemaker_region": $enc({literal(config.region)})\n'
        "      }\n"
        "    ]),\n"
        '    "OutputDataConfig": {\n'
        f'      "S3OutputPath": {literal(output_path)},\n'
        f'      "KmsKeyId": {literal(target.kms_key_arn)},\n'
        f'      "CompressionType": {literal(training.compression.value)}\n'
        "    },\n"
        # Beside the job's model.tar.gz (the role may already write there; the bucket's key encrypts it).
        f'    "TensorBoardOutputConfig": {{"S3OutputPath": {literal(output_path)} & $jobName & "/tensorboard/",'
        f' "LocalPath": {literal(TENSORBOARD_LOCAL_PATH)}}},\n'
        '    "ResourceConfig": $merge([{\n'
        '      "InstanceType": $run.instance_type,\n'
        '      "InstanceCount": $n,\n'
        '      "VolumeSizeInGB": $run.volume_size_gb\n'
        # Local NVMe storage is encrypted by the instance; SageMaker refuses a volume key for it.
        f'    }}, $split($run.instance_type, ".")[1] in {literal(list(local_storage_families()))} ? {{}}'
        f' : {{"VolumeKmsKeyId": {literal(target.kms_key_arn)}}},\n'
        '    $warmPool.granted > 0 ? {"KeepAlivePeriodInSeconds": $warmPool.granted}]),\n'
        '    "StoppingCondition": $merge([{"MaxRuntimeInSeconds": $run.max_runtime_seconds},\n'
        '      $run.spot ? {"MaxWaitTimeInSeconds": $run.max_wait_seconds}]),\n'
        '    "EnableManagedSpotTraining": $run.spot,\n'
        f'    "RetryStrategy": {{"MaximumRetryAttempts": {training.retry_attempts}}},\n'
        '    "EnableInterContainerTrafficEncryption": $n > 1,\n'
        '    "EnableNetworkIsolation": false,\n'
        '    "ProfilerConfig": {"DisableProfiler": true},\n'
        '    "Environment": $merge([$run.environment,\n'
        f'      {{"NODE_NUMBER": $string($n), "MODEL_S3_BUCKET": {literal(names.data_bucket)}}}'
        f"{mlflow_env}]),\n"
        '    "Tags": $append(\n'
        '      [$each($run.tags, function($v, $k) { {"Key": $k, "Value": $v} })],\n'
        '      [{"Key": "trainstack:execution", "Value": $replace($states.context.Execution.Name, '
        f'{EXECUTION_TAG_UNSAFE}, "_")}}]\n'
        "    )\n"
        # SageMaker refuses an empty InputDataConfig (at least 1 member): a run without channels sends none.
        '  }, $count($keys($run.channels)) > 0 ? {"InputDataConfig": [$each($run.channels, function($c, $name) { {\n'
        '      "ChannelName": $name,\n'
        '      "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": $c.s3_uri,'
        ' "S3DataDistributionType": "FullyReplicated"}},\n'
        '      "InputMode": $c.input_mode\n'
        "    } })]}\n"
        f"  {''.join(', ' + part for part in optional)}])\n"
        ") %}"
    )


def train_states(*, next_state: str, failure_state: str, capacity_wait_state: str) -> dict[str, dict[str, Any]]:
    """Train (`createTrainingJob.sync`), and a bounded retry of CreateTrainingJob when SageMaker throttles it.

    The optimized integration names every error SageMaker's model lacks `SageMaker.AmazonSageMakerException`:
    throttling, validation and access denied alike (the Cause carries "Error Code: ThrottlingException").
    A Retry on that name would also retry requests SageMaker will never accept, so the Cause decides: a
    throttled create waits (1 s + full jitter over 5 s doubling) and tries again with the same, stable job
    name, at most TRAIN_THROTTLE_RETRIES times; anything else goes to `failure_state` at once. Capacity and
    internal errors during the job are retried by SageMaker itself (RetryStrategy). A create refused with
    ResourceLimitExceeded (another run took the instances after this one counted them) goes back to
    `capacity_wait_state` while the run's capacity wait lasts. A create answered ResourceInUse (the job exists:
    an earlier attempt reached SageMaker but its answer was lost) follows that job by polling DescribeTrainingJob
    instead of failing the run with "ended InProgress".
    """
    return {
        "Train": {
            "Type": "Task",
            "Resource": SYNC_RESOURCE,
            "Arguments": "{% $request %}",
            "Catch": [
                {
                    # An earlier attempt of this create reached SageMaker (its answer was lost): the job exists.
                    # Its name holds a hash of this execution's ARN, so it is this run's job: follow it.
                    "ErrorEquals": [ERROR_RESOURCE_IN_USE],
                    "Assign": {"failure": "{% $states.errorOutput %}", "adoptPolls": 0},
                    "Next": "FollowExistingJob",
                },
                {
                    # Another run took the instances between the capacity check and this create.
                    "ErrorEquals": [ERROR_RESOURCE_LIMIT],
                    "Assign": {"failure": "{% $states.errorOutput %}"},
                    "Next": "CapacityTaken",
                },
                {
                    "ErrorEquals": [ERROR_UNMODELLED],
                    "Assign": {"failure": "{% $states.errorOutput %}"},
                    "Next": "TrainRejected",
                },
                {
                    "ErrorEquals": ["States.ALL"],
                    "Assign": {"failure": "{% $states.errorOutput %}"},
                    "Next": failure_state,
                },
            ],
            "Assign": {"job": "{% $states.result %}"},
            "Next": next_state,
        },
        "TrainRejected": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": (
                        '{% $contains($string($failure.Cause), "Error Code: ThrottlingException")'
                        f" and $trainThrottled < {TRAIN_THROTTLE_RETRIES} %}}"
                    ),
                    "Next": "WaitToRetryTrain",
                }
            ],
            "Default": failure_state,
        },
        "FollowExistingJob": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
            "Arguments": {"TrainingJobName": "{% $jobName %}"},
            # A poll's history events: this Task (5), ExistingJobEnded and WaitForExistingJob (2 each).
            "Assign": {"job": "{% $states.result %}", "historySpent": "{% $historySpent + 9 %}"},
            "Retry": [
                {
                    "ErrorEquals": ["SageMaker.SageMakerException"],
                    "IntervalSeconds": 1,
                    "BackoffRate": 2,
                    "MaxAttempts": 3,
                    "JitterStrategy": "FULL",
                }
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": failure_state}],
            "Next": "ExistingJobEnded",
        },
        "ExistingJobEnded": {
            "Type": "Choice",
            "Choices": [
                {"Condition": '{% $job.TrainingJobStatus = "Completed" %}', "Next": next_state},
                {"Condition": '{% $job.TrainingJobStatus in ["Failed", "Stopped"] %}', "Next": failure_state},
                {
                    # Near the history limit: follow the job from a fresh execution (run_continuation.py).
                    "Condition": f"{{% $historySpent >= {HISTORY_BUDGET} %}}",
                    "Assign": {"continueFollowing": True},
                    "Next": "ContinueRun",
                },
            ],
            "Default": "WaitForExistingJob",
        },
        "WaitForExistingJob": {
            "Type": "Wait",
            # 5, 10, 20, 40 ... then every 5 minutes: a 2-day job is about 580 polls (5,200 events). The exponent
            # is capped: 2^1024 is out of JSONata's number range and would fail the run.
            "Seconds": "{% $min([300, 5 * $power(2, $min([$adoptPolls, 6]))]) %}",
            "Assign": {"adoptPolls": "{% $adoptPolls + 1 %}"},
            "Next": "FollowExistingJob",
        },
        "CapacityTaken": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $capacityWaited < $run.capacity_wait_seconds %}", "Next": capacity_wait_state}
            ],
            "Default": failure_state,
        },
        "WaitToRetryTrain": {
            "Type": "Wait",
            "Seconds": "{% 1 + $floor($random() * 5 * $power(2, $trainThrottled)) %}",
            "Assign": {"trainThrottled": "{% $trainThrottled + 1 %}"},
            "Next": "Train",
        },
    }


# Tag keys only the platform sets: the state machine names the execution that created a job.
EXECUTION_TAG = "trainstack:execution"
CREATE_ON_EBS = "CreateTrainingJobsWithThePlatformVolumeKey"
CREATE_ON_LOCAL_STORAGE = "CreateTrainingJobsOnLocalStorage"
UPDATE_INSIDE_GUARD_RAILS = "UpdateTrainingJobsInsideGuardRails"


def training_job_conditions(
    config: EnvironmentConfig, target: TrainingJobTarget, *, require_inter_container_encryption: bool
) -> dict[str, dict[str, dict[str, object]]]:
    """IAM conditions every CreateTrainingJob of the environment must meet, whoever sends it, by statement id.

    Condition keys as the Service Authorization Reference lists them for sagemaker:CreateTrainingJob (and
    as tests/test_iam_lint.py checks them against parliament's copy of it). The list-valued keys
    (`VpcSubnets`, `VpcSecurityGroupIds`, `InstanceTypes`) use ForAllValues, which is also true for an
    absent list, so each is paired with `Null: false`: a job without a VPC is refused, not waved through.

    Two statements, split by the instance storage table (trainstack/data/instance_storage.json): on a type with
    an EBS volume the request must name the platform key for it; on a type with local NVMe storage it must name
    none (SageMaker refuses a VolumeKmsKeyId there). A statement whose families the environment allows none of
    is left out.
    """
    training = config.training
    common: dict[str, dict[str, object]] = {
        **platform_tag_conditions(config),
        # Numbers as strings, the form the IAM reference's examples use (moto's validator refuses JSON numbers).
        "NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": str(training.max_runtime_ceiling_seconds)},
        **_ceilings(config),
        "Null": {"sagemaker:InstanceTypes": "false"},
    }
    if require_inter_container_encryption:
        common["Bool"] = {"sagemaker:InterContainerTrafficEncryption": "true"}
    if target.subnet_ids:
        common["ForAllValues:StringEquals"] = {
            "sagemaker:VpcSubnets": list(target.subnet_ids),
            "sagemaker:VpcSecurityGroupIds": list(target.security_group_ids or []),
        }
        common["Null"] = {**common["Null"], "sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"}
    local = [f for f in training.allowed_instance_families if f in local_storage_families()]
    ebs = [f for f in training.allowed_instance_families if f not in local]
    statements: dict[str, dict[str, dict[str, object]]] = {}
    if ebs:
        statements[CREATE_ON_EBS] = {
            **common,
            # ARN-typed keys: the request must name the key by its ARN, as the platform's requests do.
            "ArnEquals": {"sagemaker:VolumeKmsKey": target.kms_key_arn, "sagemaker:OutputKmsKey": target.kms_key_arn},
            "ForAllValues:StringLike": {"sagemaker:InstanceTypes": [f"ml.{family}.*" for family in ebs]},
        }
    if local:
        statements[CREATE_ON_LOCAL_STORAGE] = {
            **common,
            "ArnEquals": {"sagemaker:OutputKmsKey": target.kms_key_arn},
            "ForAllValues:StringLike": {"sagemaker:InstanceTypes": [f"ml.{family}.*" for family in local]},
            "Null": {**common["Null"], "sagemaker:VolumeKmsKey": "true"},
        }
    return statements


def _ceilings(config: EnvironmentConfig) -> dict[str, dict[str, object]]:
    """What CreateTrainingJob and UpdateTrainingJob share: the keep-alive ceiling and no remote debugging."""
    return {
        # Absent means no warm pool (or, on update, no change to it), which is within any ceiling.
        "NumericLessThanEqualsIfExists": {"sagemaker:KeepAlivePeriod": str(config.training.keep_alive_ceiling_seconds)},
        # Remote debugging opens an SSM session into the job's container: not for platform jobs.
        "BoolIfExists": {"sagemaker:EnableRemoteDebug": "false"},
    }


def update_training_job_conditions(config: EnvironmentConfig) -> dict[str, dict[str, object]]:
    """The CreateTrainingJob rails an UpdateTrainingJob could break (its condition keys in the Service
    Authorization Reference: EnableRemoteDebug, KeepAlivePeriod, InstanceTypes), for every role that has it.

    An update names no instance type; the key, if AWS sets it from the job, must be an allowed family, and
    ForAllValues is true when it is absent (an update cannot change the type)."""
    families = config.training.allowed_instance_families
    return {
        **_ceilings(config),
        "ForAllValues:StringLike": {"sagemaker:InstanceTypes": [f"ml.{family}.*" for family in families]},
    }


def platform_tag_conditions(config: EnvironmentConfig) -> dict[str, dict[str, object]]:
    """The platform's tags, present and with the platform's values, on every tagging request."""
    return {"StringEquals": {f"aws:RequestTag/{key}": value for key, value in config.platform_tags.items()}}


def job_name_pattern(config: EnvironmentConfig) -> str:
    """The environment's jobs as an ARN resource: `<job_name_prefix>-*`, with the separator.

    Without it `trainstack-dev*` would also match `trainstack-dev2-...`, another environment's jobs; the
    configs of one account are checked at synth so that no environment's `<prefix>-` starts another's
    (trainstack.config.check_job_name_prefixes), which makes the patterns of one account disjoint.
    """
    return f"training-job/{config.training.job_name_prefix}-*"


def grant_training_jobs(
    policy: ScopedPolicy,
    config: EnvironmentConfig,
    target: TrainingJobTarget,
    *,
    extra_actions: Sequence[str] = (),
    require_inter_container_encryption: bool = True,
    may_tag_execution: bool = False,
    may_update: bool = False,
) -> None:
    """Create, watch and stop the environment's training jobs, passing only its execution role.

    CreateTrainingJob is allowed only inside the platform's guard rails (`training_job_conditions`), and
    tagging (also checked as sagemaker:AddTags when CreateTrainingJob carries tags) only with the platform's
    tags at the platform's values, so a job cannot claim another environment, team or cost centre.
    `may_tag_execution` is for the state machine, the only role that may set `trainstack:execution`.
    `may_update` grants UpdateTrainingJob (releasing a warm pool) inside the same ceilings.
    """
    names = ResourceNames.of(config)
    jobs = [names.arn("sagemaker", job_name_pattern(config))]
    reason = "job names start with the environment's job-name prefix and are made per run"
    for sid, conditions in training_job_conditions(
        config, target, require_inter_container_encryption=require_inter_container_encryption
    ).items():
        policy.allow(sid, ["sagemaker:CreateTrainingJob"], jobs, wildcard_reason=reason, conditions=conditions)
    if may_update:
        grant_update_training_jobs(policy, config, jobs, reason)
    policy.allow(
        "TagTrainingJobsAsThePlatform",
        ["sagemaker:AddTags"],
        jobs,
        wildcard_reason=reason,
        conditions=platform_tag_conditions(config),
    )
    if not may_tag_execution:
        policy.deny(
            "OnlyThePipelineTagsExecutions",
            ["sagemaker:CreateTrainingJob", "sagemaker:AddTags"],
            jobs,
            conditions={"ForAnyValue:StringEquals": {"aws:TagKeys": [EXECUTION_TAG]}},
        )
    policy.allow(
        "WatchAndStopTrainingJobs",
        [
            "sagemaker:DescribeTrainingJob",
            "sagemaker:StopTrainingJob",
            # `.sync` reads the job's tags (AWS "IAM policies for SageMaker AI"); the embedded AWS refuses without it.
            "sagemaker:ListTags",
            *extra_actions,
        ],
        jobs,
        wildcard_reason=reason,
    )
    policy.allow(
        "PassExecutionRole",
        ["iam:PassRole"],
        [target.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def grant_update_training_jobs(policy: ScopedPolicy, config: EnvironmentConfig, jobs: list[str], reason: str) -> None:
    policy.allow(
        UPDATE_INSIDE_GUARD_RAILS,
        ["sagemaker:UpdateTrainingJob"],
        jobs,
        wildcard_reason=reason,
        conditions=update_training_job_conditions(config),
    )


def grant_sync_events(policy: ScopedPolicy, config: EnvironmentConfig) -> None:
    """`.sync` on training jobs: Step Functions manages one EventBridge rule in the account."""
    policy.allow(
        "SyncWithTrainingJobEvents",
        ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        [ResourceNames.of(config).arn("events", f"rule/{SYNC_EVENTS_RULE}")],
    )
