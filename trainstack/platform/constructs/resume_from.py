"""Resume across runs: an input naming an earlier run or job (`resume_from`) starts from its checkpoints.

Every attempt of a run writes to `s3://<artifacts>/checkpoints/<run name>/` (`$checkpointName`). Naming that run,
or any of its jobs (`<run>-r<n>` included), makes this run's jobs use the same prefix, so SageMaker restores the
newest checkpoint into /opt/ml/checkpoints and the training script resumes there (a run stopped at its max runtime
continues). The named job is described to find its prefix, then the run's jobs are listed and its prefix is read, so
the run fails with InvalidInput before anything is created when:
- the job kept no checkpoints under this environment's prefix (another environment's, none configured);
- that run still has a job in progress or stopping (its first job or a retry `-r<n>`): two live jobs would write
  to one checkpoint prefix and each would resume from the other's half-written steps;
- that run left nothing under its prefix (it stopped before its first save): there is nothing to resume from,
  as the run input's schema says.
A run that itself resumed another (its jobs write to that other run's prefix under their own names) is not found
by the listing: naming the original run while such a resumption is live is not refused.
"""

from __future__ import annotations

from typing import Any

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs.scoped_policy import ScopedPolicy

_SDK = "arn:aws:states:::aws-sdk"
# A job in these states may still write checkpoints (a stopping job saves one last time).
_LIVE = '["InProgress", "Stopping"]'


def resume_states(config: EnvironmentConfig, *, next_state: str, invalid_state: str) -> dict[str, dict[str, Any]]:
    """`ResumeWanted` -> (`FindResumePoint` ->) `next_state`; a bad `resume_from` goes to `invalid_state`."""
    from trainstack.platform.storage_stack import ARTIFACT_PREFIXES

    bucket = ResourceNames.of(config).artifacts_bucket
    prefix = f"s3://{bucket}/{ARTIFACT_PREFIXES['checkpoints']}"
    uri = "$states.result.CheckpointConfig.S3Uri"
    return {
        "ResumeWanted": {
            "Type": "Choice",
            "Choices": [{"Condition": '{% $type($run.resume_from) = "string" %}', "Next": "FindResumePoint"}],
            "Default": next_state,
        },
        "FindResumePoint": {
            "Type": "Task",
            "Resource": f"{_SDK}:sagemaker:describeTrainingJob",
            "Arguments": {"TrainingJobName": "{% $run.resume_from %}"},
            "Assign": {
                "checkpointName": (
                    f'{{% $type({uri}) = "string" and $substring({uri}, 0, {len(prefix)}) = "{prefix}"'
                    f' ? $split($substring({uri}, {len(prefix)}), "/")[0] : null %}}'
                ),
                "resumeProblem": (
                    f'{{% "resume_from: training job " & $run.resume_from & " kept no checkpoints under {prefix}'
                    ' (its CheckpointConfig is " & ($exists($states.result.CheckpointConfig)'
                    ' ? $string($states.result.CheckpointConfig) : "absent") & ")" %}'
                ),
            },
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Assign": {
                        "resumeProblem": (
                            '{% "resume_from: no training job named " & $run.resume_from & " can be described ("'
                            ' & $states.errorOutput.Error & "); name an earlier run or one of its jobs" %}'
                        )
                    },
                    "Next": invalid_state,
                }
            ],
            "Next": "HasResumePoint",
        },
        "HasResumePoint": {
            "Type": "Choice",
            "Choices": [{"Condition": '{% $type($checkpointName) = "string" %}', "Next": "FindLiveResumeJobs"}],
            "Default": invalid_state,
        },
        "FindLiveResumeJobs": {
            "Type": "Task",
            "Resource": f"{_SDK}:sagemaker:listTrainingJobs",
            # The run's own jobs: its first job is named like the run, its retries add "-r<n>".
            "Arguments": {"NameContains": "{% $checkpointName %}", "MaxResults": 100},
            "Assign": {
                "resumeLive": (
                    "{% [$states.result.TrainingJobSummaries[TrainingJobStatus in " + _LIVE + "].TrainingJobName] %}"
                ),
                "resumeProblem": (
                    '{% "resume_from: run " & $checkpointName & " still has a job running ("'
                    " & $join($states.result.TrainingJobSummaries[TrainingJobStatus in " + _LIVE + "]"
                    '.(TrainingJobName & " " & TrainingJobStatus), ", ") & "); two live jobs would write to one'
                    ' checkpoint prefix: wait for it to end, or stop it, then start this run" %}'
                ),
            },
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Assign": {
                        "resumeProblem": (
                            '{% "resume_from: the jobs of run " & $checkpointName & " cannot be listed ("'
                            ' & $states.errorOutput.Error & "); try again" %}'
                        )
                    },
                    "Next": invalid_state,
                }
            ],
            "Next": "ResumeSourceIdle",
        },
        "ResumeSourceIdle": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $count($resumeLive) = 0 %}", "Next": "FindResumeCheckpoints"}],
            "Default": invalid_state,
        },
        "FindResumeCheckpoints": {
            "Type": "Task",
            "Resource": f"{_SDK}:s3:listObjectsV2",
            "Arguments": {
                "Bucket": bucket,
                "Prefix": f'{{% "{ARTIFACT_PREFIXES["checkpoints"]}" & $checkpointName & "/" %}}',
                "MaxKeys": 1,
            },
            "Assign": {
                "resumeProblem": (
                    f'{{% "resume_from: run " & $checkpointName & " left no checkpoints under {prefix}"'
                    ' & $checkpointName & "/ (it ended before its first save): nothing to resume from; start a'
                    ' run without resume_from" %}'
                ),
                "resumeFound": "{% $states.result.KeyCount %}",
            },
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Assign": {
                        "resumeProblem": (
                            '{% "resume_from: the checkpoints of run " & $checkpointName & " cannot be listed ("'
                            ' & $states.errorOutput.Error & "); try again" %}'
                        )
                    },
                    "Next": invalid_state,
                }
            ],
            "Next": "HasCheckpoints",
        },
        "HasCheckpoints": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $resumeFound > 0 %}", "Next": next_state}],
            "Default": invalid_state,
        },
        "ResumeNotPossible": {"Type": "Fail", "Error": "InvalidInput", "Cause": "{% $resumeProblem %}"},
    }


def grant_resume_reads(policy: ScopedPolicy, config: EnvironmentConfig) -> None:
    """ListBucket on the artifacts bucket, for the checkpoints/ prefix only (FindResumeCheckpoints).

    The run's jobs are listed with sagemaker:ListTrainingJobs, which the quota check's grant already holds.
    """
    from trainstack.platform.storage_stack import ARTIFACT_PREFIXES

    names = ResourceNames.of(config)
    policy.allow(
        "FindResumeCheckpoints",
        ["s3:ListBucket"],
        [f"arn:{names.partition}:s3:::{names.artifacts_bucket}"],
        conditions={"StringLike": {"s3:prefix": [f"{ARTIFACT_PREFIXES['checkpoints']}*"]}},
    )
