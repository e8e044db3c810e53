"""Never leak a pool: an aborted, timed-out or failed run's jobs are stopped and their warm pools ended.

SageMaker keeps a warm pool for a job stopped after its cluster launched, and Step Functions stops a `.sync`
task's job on abort only best effort; a run that ends ABORTED or TIMED_OUT can leave a billed pool, and so can one
that ends FAILED while its job runs (e.g. at Step Functions' 25,000-event history limit, error States.Runtime). An
EventBridge rule on the pipeline's `Step Functions Execution Status Change` events (ABORTED, TIMED_OUT, FAILED)
starts this small state machine (JSONata, no Lambda) with the event as its input:

    Start (the run's suffix, from the event) -> ListJobs (NameContains, paged) -> CleanJobs (Map, per job:
        Describe -> InProgress? Stop -> Wait -> Describe ... -> pool Available? EndPool (keep-alive 0))
    -> AnythingToReport? Report (SNS: what it did) ; its output is the same report.

Finding the jobs by the run itself, not by a prefix: every job of a run is named `<its job_name_prefix>-<suffix>`
or `...-<suffix>-r<n>` (capacity retries), and the suffix (`run_suffix_expression`) is the run's first
execution's start time to the millisecond and a hash of its ARN: the event carries both, and a run continued in
a fresh execution (`run_continuation.py`) carries its run name in its input, which the event also carries. So a
run with its own `job_name_prefix` is found, and no other run's job is. This needs only the event: no
GetExecutionHistory to page (a run that waited for capacity for hours has thousands of events; and Step Functions'
API is camelCase, whose `aws-sdk` output casing the embedded AWS renders as boto3 does, which we could not confirm
against AWS), and it finds jobs the history shows only as a failed task (a retried create that did create its
job). The cost: ListTrainingJobs has no resource-level permissions. A run that failed before creating a job
(invalid input, quota) finds none, and then sends no notification.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs import trusted_services
from trainstack.platform.constructs.create_training_job_state import grant_update_training_jobs, job_name_pattern
from trainstack.platform.constructs.logged_state_machine import LoggedStateMachineProps, logged_state_machine
from trainstack.platform.constructs.run_continuation import CONTINUATION_KEY
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.constructs.training_run_input import RUN_SUFFIX_LENGTH, run_suffix_expression

STATUS_CHANGE = "Step Functions Execution Status Change"
CLEANED_STATUSES = ("ABORTED", "TIMED_OUT", "FAILED")
# How long a stopped job may stay Stopping before the cleanup reports it as such (polls × seconds).
STOP_POLLS = 60
STOP_POLL_SECONDS = 5

_SDK = "arn:aws:states:::aws-sdk:sagemaker"
# SageMaker's throttling and server errors reach aws-sdk tasks as its base exception; SNS names its own.
_RETRY = [
    {
        "ErrorEquals": ["SageMaker.SageMakerException", "SNS.ThrottledException", "States.Timeout"],
        "IntervalSeconds": 1,
        "BackoffRate": 2,
        "MaxAttempts": 4,
        "JitterStrategy": "FULL",
    }
]
_FAILED = {"ErrorEquals": ["States.ALL"], "Assign": {"failure": "{% $states.errorOutput %}"}, "Next": "Failed"}
_JOB_REPORT = (
    '{% {"jobName": $jobName, "status": $status, "stopped": $stopped, "warmPool": $pool, "poolEnded": __ENDED__} %}'
)


def _job_cleaner() -> dict[str, Any]:
    """One job: stop it if it still runs, wait until it has stopped, end its pool if one is Available."""
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "Remember",
        "States": {
            "Remember": {
                "Type": "Pass",
                "Assign": {
                    "jobName": "{% $states.input %}",
                    "stopped": False,
                    "polls": 0,
                    "status": None,
                    "pool": None,
                },
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": f"{_SDK}:describeTrainingJob",
                "Arguments": {"TrainingJobName": "{% $jobName %}"},
                "Assign": {
                    "status": "{% $states.result.TrainingJobStatus %}",
                    "pool": (
                        '{% $states.result.WarmPoolStatus.Status ? $states.result.WarmPoolStatus.Status : "None" %}'
                    ),
                    "polls": "{% $polls + 1 %}",
                },
                "Retry": _RETRY,
                "Catch": [_FAILED],
                "Next": "Decide",
            },
            "Decide": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": '{% $status = "InProgress" and $not($stopped) %}', "Next": "Stop"},
                    {
                        "Condition": f'{{% $status in ["InProgress", "Stopping"] and $polls < {STOP_POLLS} %}}',
                        "Next": "WaitForStop",
                    },
                    {"Condition": '{% $pool = "Available" %}', "Next": "EndPool"},
                ],
                "Default": "Left",
            },
            "Stop": {
                "Type": "Task",
                "Resource": f"{_SDK}:stopTrainingJob",
                "Arguments": {"TrainingJobName": "{% $jobName %}"},
                "Assign": {"stopped": True},
                "Retry": _RETRY,
                "Catch": [_FAILED],
                "Next": "WaitForStop",
            },
            "WaitForStop": {"Type": "Wait", "Seconds": STOP_POLL_SECONDS, "Next": "Describe"},
            "EndPool": {
                "Type": "Task",
                "Resource": f"{_SDK}:updateTrainingJob",
                "Arguments": {"TrainingJobName": "{% $jobName %}", "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}},
                "Output": _JOB_REPORT.replace("__ENDED__", "true"),
                "Retry": _RETRY,
                "Catch": [_FAILED],
                "End": True,
            },
            "Left": {"Type": "Pass", "Output": _JOB_REPORT.replace("__ENDED__", "false"), "End": True},
            "Failed": {
                "Type": "Pass",
                "Output": _JOB_REPORT.replace("__ENDED__", 'false, "error": $failure.Error, "cause": $failure.Cause'),
                "End": True,
            },
        },
    }


def cleanup_name(names: ResourceNames) -> str:
    """The cleanup state machine's name (its role trusts Step Functions for this machine only)."""
    return f"{names.state_machine}-pool-cleanup"


def cleanup_definition(config: EnvironmentConfig, topic_arn: str) -> dict[str, Any]:
    """The cleanup's ASL; its input is the status-change event of one of the pipeline's executions."""
    derived = run_suffix_expression("$fromMillis($states.input.detail.startDate)", "$states.input.detail.executionArn")
    # A continued run's input carries the run's name; its suffix is the run's first execution's.
    run_suffix = (
        f"{{% ($c := $parse($states.input.detail.input).{CONTINUATION_KEY};"
        f' $type($c.run_name) = "string" ? $substring($c.run_name, -{RUN_SUFFIX_LENGTH}) : {derived}) %}}'
    )
    environment_prefix = config.training.job_name_prefix + "-"
    report = (
        '{% {"environment": "' + config.name + '", "execution": $execution, "executionStatus": $executionStatus,'
        ' "runSuffix": $runSuffix, "jobs": $cleaned, "problem": $problem} %}'
    )
    return {
        "Comment": f"trainstack {config.name}: stop an aborted, timed-out or failed run's jobs and end their pools",
        "QueryLanguage": "JSONata",
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Pass",
                "Assign": {
                    "execution": "{% $states.input.detail.executionArn %}",
                    "executionStatus": "{% $states.input.detail.status %}",
                    "runSuffix": run_suffix,
                    "jobs": [],
                    "token": None,
                    "cleaned": [],
                    "problem": None,
                },
                "Next": "ListJobs",
            },
            "ListJobs": {
                "Type": "Task",
                "Resource": f"{_SDK}:listTrainingJobs",
                "Arguments": (
                    '{% $merge([{"NameContains": $runSuffix, "MaxResults": 100},'
                    ' $token ? {"NextToken": $token} : {}]) %}'
                ),
                # Keep the environment's jobs whose name ends in the suffix, or in the suffix and `-r<n>`.
                "Assign": {
                    "jobs": (
                        "{% $append($jobs, $states.result.TrainingJobSummaries["
                        f'$substring(TrainingJobName, 0, {len(environment_prefix)}) = "{environment_prefix}"'
                        ' and $contains(TrainingJobName, "-" & $runSuffix)'
                        ' and $contains($substringAfter(TrainingJobName, "-" & $runSuffix), /^(-r[0-9]+)?$/)]'
                        ".TrainingJobName) %}"
                    ),
                    "token": "{% $exists($states.result.NextToken) ? $states.result.NextToken : null %}",
                },
                "Retry": _RETRY,
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"problem": '{% "listing jobs: " & $states.errorOutput.Cause %}'},
                        "Next": "Report",
                    }
                ],
                "Next": "MoreJobs",
            },
            "MoreJobs": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $token != null %}", "Next": "ListJobs"}],
                "Default": "CleanJobs",
            },
            "CleanJobs": {
                "Type": "Map",
                "Items": "{% $distinct($jobs) ? [$distinct($jobs)] : [] %}",
                "MaxConcurrency": 5,
                "ItemProcessor": _job_cleaner(),
                "Assign": {"cleaned": "{% $states.result %}"},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"problem": '{% "cleaning jobs: " & $states.errorOutput.Cause %}'},
                        "Next": "Report",
                    }
                ],
                "Next": "AnythingToReport",
            },
            # Most failed runs (invalid input, quota) never created a job: nothing to tell anyone.
            "AnythingToReport": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $count($jobs) > 0 %}", "Next": "Report"}],
                "Default": "NothingToReport",
            },
            "NothingToReport": {"Type": "Pass", "Output": report, "Next": "Done"},
            "Report": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Arguments": {
                    "TopicArn": topic_arn,
                    "Subject": f"trainstack {config.name}: a run ended aborted, timed out or failed; jobs cleaned up",
                    "Message": "{% $string(" + report[3:-3] + ") %}",
                },
                "Output": report,
                "Retry": _RETRY,
                # The report is the output either way; a notification that cannot be sent must not hide it.
                "Catch": [{"ErrorEquals": ["States.ALL"], "Output": report, "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


class PoolCleanup(Construct):
    """Exposes `.state_machine`, `.log_group`, `.rule` and `.role` (the cleanup's own)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        topic: sns.ITopic,
        pipeline_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        names = ResourceNames.of(config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=trusted_services.state_machine(names, cleanup_name(names)),
            description=f"trainstack {config.name}: stops aborted runs' jobs and ends their warm pools",
        )
        policy = ScopedPolicy(self, "Policy", roles=[self.role])
        policy.allow(
            "ListJobs",
            ["sagemaker:ListTrainingJobs"],
            ["*"],
            wildcard_reason="ListTrainingJobs supports no resource-level permissions",
        )
        jobs = [names.arn("sagemaker", job_name_pattern(config))]
        reason = "job names start with the environment's job-name prefix and are made per run"
        policy.allow(
            "StopJobs", ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"], jobs, wildcard_reason=reason
        )
        # Ending a pool is UpdateTrainingJob with keep-alive 0, inside the rails every job-creating role has.
        grant_update_training_jobs(policy, config, jobs, reason)
        policy.allow("Report", ["sns:Publish"], [topic.topic_arn])
        policy.allow("UseTopicKey", ["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])

        self.state_machine, self.log_group = logged_state_machine(
            self,
            LoggedStateMachineProps(
                name=cleanup_name(names),
                asl=cleanup_definition(config, topic.topic_arn),
                role=self.role,
                key=key,
                policy=policy,
            ),
        )

        # The rule's role (made by the target) may only start this machine: states:StartExecution on its ARN.
        self.rule = events.Rule(
            self,
            "AbortedOrTimedOutRuns",
            description=f"trainstack {config.name}: clean up after a run that ended aborted, timed out or failed",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={"stateMachineArn": [pipeline_arn], "status": list(CLEANED_STATUSES)},
            ),
            targets=[targets.SfnStateMachine(self.state_machine)],
        )
