"""The training pipeline: a JSONata state machine that validates a run, checks quotas and trains.

    Validate -> IsValid -(no)-> InvalidInput
             -> Prepare -> NameJob -> ResolveQuotaCodes ... (quota_check.py) -> DecideWarmPool -> DecideCapacity
                 -> HasCapacity -(short)-> WaitingForCapacity -> CountUsage ... | CapacityUnavailable
             -> BuildRequest -> Train (createTrainingJob.sync) -> Succeeded (the run's summary)
                                  \\-> (ResourceLimitExceeded) -> WaitingForCapacity
                                  \\-> DescribeFailure -> CapacityLost -(CapacityError)-> WaitToRetryCapacity
                                                        |                 -> CountUsage ... (job <run>-r<n>)
                                                        \\-> Notify (SNS) -> TrainingFailed
QuotaExceeded ends a run whose request the account's quotas cannot serve.

No Lambda: every step is a Pass/Choice/Map state with JSONata or a direct service integration.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs import trusted_services
from trainstack.platform.constructs.capacity_retry import capacity_retry_states
from trainstack.platform.constructs.create_training_job_state import (
    TrainingJobTarget,
    grant_sync_events,
    grant_training_jobs,
    request_expression,
    train_states,
)
from trainstack.platform.constructs.logged_state_machine import LoggedStateMachineProps, logged_state_machine
from trainstack.platform.constructs.pool_cleanup import PoolCleanup
from trainstack.platform.constructs.quota_check import grant_quota_reads, quota_states
from trainstack.platform.constructs.resume_from import grant_resume_reads, resume_states
from trainstack.platform.constructs.run_continuation import (
    continuation_entry_states,
    continuation_states,
    grant_continuation,
)
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.constructs.training_run_input import (
    JOB_NAME_EXPRESSION,
    prepare_expression,
    validate_expression,
)

_SUMMARY = r"""{% {
  "jobName": $jobName,
  "status": $job.TrainingJobStatus,
  "secondaryStatus": $job.SecondaryStatus,
  "modelArtifacts": $job.ModelArtifacts.S3ModelArtifacts,
  "trainingSeconds": $job.TrainingTimeInSeconds,
  "billableSeconds": $job.BillableTimeInSeconds,
  "instanceType": $run.instance_type,
  "instanceCount": $run.instance_count,
  "warmPool": $merge([$warmPool, {"status": $job.WarmPoolStatus.Status ? $job.WarmPoolStatus.Status : "None"}]),
  "result": $job.ModelArtifacts.S3ModelArtifacts ? "model" : "nothing",
  "checkpoints": $job.CheckpointConfig.S3Uri ? $job.CheckpointConfig.S3Uri : null,
  "quotas": $quotas
} %}"""

_FAILURE_REASON = r"""{% $states.result.FailureReason ? $states.result.FailureReason
  : "training job " & $jobName & " ended " & $states.result.TrainingJobStatus %}"""


def _carried(field: str, otherwise: str) -> str:
    """A value a continued run carries (run_continuation.py), else `otherwise` (a `{% ... %}` expression). A
    malformed continuation gives null here (an undefined result would fail the state) and is refused next."""
    carried = f"$continuation.{field}"
    return f"{{% $continuation ? ($exists({carried}) ? {carried} : null) : ({otherwise[2:-2].strip()}) %}}"


def definition(config: EnvironmentConfig, target: TrainingJobTarget, topic_arn: str) -> dict[str, Any]:
    """The state machine's ASL (JSONata); strings may hold CDK tokens."""
    return {
        "Comment": f"trainstack {config.name}: validate a run, check quotas, train with the packaged entry point",
        "QueryLanguage": "JSONata",
        "StartAt": "Start",
        "States": {
            **continuation_entry_states(next_state="Validate"),
            "Validate": {"Type": "Pass", "Assign": {"problems": validate_expression(config)}, "Next": "IsValid"},
            "IsValid": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $count($problems) = 0 %}", "Next": "Prepare"}],
                "Default": "InvalidInput",
            },
            "InvalidInput": {
                "Type": "Fail",
                "Error": "InvalidInput",
                "Cause": '{% $join($problems, "; ") %}',
            },
            "Prepare": {"Type": "Pass", "Assign": {"run": prepare_expression(config)}, "Next": "NameJob"},
            "NameJob": {
                "Type": "Pass",
                # The run's name: its first job's, and the checkpoint prefix every attempt shares; a continued
                # run keeps its first execution's (run_continuation.py).
                "Assign": {
                    "runName": _carried("run_name", JOB_NAME_EXPRESSION),
                    "jobName": _carried("job_name", JOB_NAME_EXPRESSION),
                    "checkpointName": _carried("checkpoint_name", JOB_NAME_EXPRESSION),
                    "capacityRetries": _carried("capacity_retries", "{% 0 %}"),
                },
                "Next": "IsContinuation",
            },
            **continuation_states(
                fresh_run_state="ResumeWanted",
                capacity_state="ResolveQuotaCodes",
                follow_state="FollowExistingJob",
                invalid_state="InvalidContinuation",
            ),
            "InvalidContinuation": {"Type": "Fail", "Error": "InvalidInput", "Cause": "{% $continuationProblem %}"},
            **resume_states(config, next_state="ResolveQuotaCodes", invalid_state="ResumeNotPossible"),
            **quota_states(
                config,
                draft_request=request_expression(config, target),
                next_state="BuildRequest",
                exceeded_state="QuotaExceeded",
            ),
            "QuotaExceeded": {"Type": "Fail", "Error": "QuotaExceeded", "Cause": "{% $quotaProblem %}"},
            "BuildRequest": {
                "Type": "Pass",
                "Assign": {"request": request_expression(config, target), "trainThrottled": 0},
                "Next": "Train",
            },
            **train_states(
                next_state="Succeeded", failure_state="DescribeFailure", capacity_wait_state="WaitingForCapacity"
            ),
            "DescribeFailure": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                "Arguments": {"TrainingJobName": "{% $jobName %}"},
                "Assign": {
                    "failureReason": _FAILURE_REASON,
                    # What the run leaves: a model, checkpoints only (it trained, with checkpointing on), or nothing.
                    "failureLeft": (
                        '{% $states.result.ModelArtifacts.S3ModelArtifacts ? "model"'
                        " : ($states.result.CheckpointConfig.S3Uri and $states.result.TrainingTimeInSeconds > 0"
                        ' ? "checkpoints only: " & $states.result.CheckpointConfig.S3Uri : "nothing") %}'
                    ),
                    "failureError": '{% $states.result.TrainingJobStatus = "Stopped" ? "TrainingJobStopped"'
                    ' : "TrainingJobFailed" %}',
                },
                # No job to describe: SageMaker refused the request; its message is the reason.
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {
                            "failureReason": "{% $failure.Cause ? $failure.Cause : $failure.Error %}",
                            "failureError": "TrainingJobRejected",
                            "failureLeft": "nothing",
                        },
                        "Next": "Notify",
                    }
                ],
                "Next": "CapacityLost",
            },
            **capacity_retry_states(retry_state="RetryCapacityCheck", otherwise="Notify"),
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Arguments": {
                    "TopicArn": topic_arn,
                    "Subject": f"trainstack {config.name}: training run failed",
                    "Message": (
                        '{% $string({"environment": "' + config.name + '", "execution": $states.context.Execution.Id,'
                        ' "jobName": $jobName, "error": $failureError, "reason": $failureReason,'
                        ' "left": $failureLeft}) %}'
                    ),
                },
                # A notification that cannot be sent must not hide the job's own failure.
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "TrainingFailed"}],
                "Next": "TrainingFailed",
            },
            "TrainingFailed": {
                "Type": "Fail",
                "Error": "{% $failureError %}",
                "Cause": '{% $failureReason & " (the run leaves " & $failureLeft & ")" %}',
            },
            "Succeeded": {"Type": "Pass", "Output": _SUMMARY, "End": True},
        },
    }


class TrainingPipeline(Construct):
    """Exposes `.state_machine`, `.topic`, `.log_group`, `.role`, `.cleanup` and `.failure_alarm`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        target: TrainingJobTarget,
    ) -> None:
        super().__init__(scope, construct_id)
        names = ResourceNames.of(config)

        self.topic = sns.Topic(
            self,
            "Notifications",
            topic_name=names.notification_topic,
            display_name=f"trainstack {config.name} training",
            master_key=key,
            enforce_ssl=True,
        )
        for email in config.training.notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=trusted_services.state_machine(names, names.state_machine),
            description=f"trainstack {config.name}: the training state machine",
        )
        policy = ScopedPolicy(self, "Policy", roles=[self.role])
        # The request enables inter-container encryption for multi-instance jobs only (`$n > 1`), which IAM
        # cannot tell apart; the notebook role requires it for every job.
        grant_training_jobs(policy, config, target, require_inter_container_encryption=False, may_tag_execution=True)
        grant_sync_events(policy, config)
        grant_quota_reads(policy, names)
        grant_resume_reads(policy, config)
        grant_continuation(policy, names)
        policy.allow("Notify", ["sns:Publish"], [self.topic.topic_arn])
        policy.allow("UseTopicKey", ["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])

        self.state_machine, self.log_group = logged_state_machine(
            self,
            LoggedStateMachineProps(
                name=names.state_machine,
                asl=definition(config, target, self.topic.topic_arn),
                role=self.role,
                key=key,
                policy=policy,
            ),
        )
        self.cleanup = PoolCleanup(
            self,
            "PoolCleanup",
            config=config,
            key=key,
            topic=self.topic,
            pipeline_arn=self.state_machine.state_machine_arn,
        )

        self.failure_alarm = cloudwatch.Alarm(
            self,
            "FailedExecutions",
            alarm_name=f"{names.state_machine}-failed-executions",
            alarm_description="A training run failed, timed out or was aborted; the topic carries the reason.",
            # ExecutionsFailed counts neither aborted nor timed-out executions: the three are summed.
            metric=cloudwatch.MathExpression(
                expression="failed + aborted + timedOut",
                using_metrics={
                    "failed": self.state_machine.metric_failed(statistic="Sum"),
                    "aborted": self.state_machine.metric_aborted(statistic="Sum"),
                    "timedOut": self.state_machine.metric_timed_out(statistic="Sum"),
                },
                label="failed, aborted and timed-out executions",
                period=Duration.minutes(5),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))


def example_input(config: EnvironmentConfig) -> str:
    """The console's copy-paste input: the defaults made explicit, so users see every knob."""
    training = config.training
    return json.dumps(
        {
            "instance_type": training.instance_type,
            "instance_count": training.instance_count.default,
            "hyperparameters": training.hyperparameters,
            "keep_alive_seconds": training.keep_alive_seconds,
        },
        separators=(",", ":"),
    )
