"""Resume across runs: an input naming an earlier run or job (`resume_from`) starts from its checkpoints.

Every attempt of a run writes to `s3://<artifacts>/checkpoints/<run name>/` (`$checkpointName`). Naming that run,
or any of its jobs (`<run>-r<n>` included), makes this run's jobs use the same prefix, so SageMaker restores the
newest checkpoint into /opt/ml/checkpoints and the training script resumes there (a run stopped at its max runtime
continues). The named job is described to find its prefix: a job with no checkpoints under this environment's
prefix fails the run with InvalidInput before anything is created.
"""

from __future__ import annotations

from typing import Any

from trainstack.config import EnvironmentConfig, ResourceNames

_SDK = "arn:aws:states:::aws-sdk"


def resume_states(config: EnvironmentConfig, *, next_state: str, invalid_state: str) -> dict[str, dict[str, Any]]:
    """`ResumeWanted` -> (`FindResumePoint` ->) `next_state`; a bad `resume_from` goes to `invalid_state`."""
    from stacks.storage_stack import ARTIFACT_PREFIXES

    prefix = f"s3://{ResourceNames.of(config).artifacts_bucket}/{ARTIFACT_PREFIXES['checkpoints']}"
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
            "Choices": [{"Condition": '{% $type($checkpointName) = "string" %}', "Next": next_state}],
            "Default": invalid_state,
        },
        "ResumeNotPossible": {"Type": "Fail", "Error": "InvalidInput", "Cause": "{% $resumeProblem %}"},
    }
