"""A job that failed because SageMaker could not get (or keep) its instances is retried under a new name.

SageMaker words it "CapacityError: Unable to provision requested ML compute capacity. Please retry using a
different ML instance type." (seen in public issues, e.g. DIAGNijmegen/rse-grand-challenge#2631); EC2's
"InsufficientInstanceCapacity" / "InsufficientCapacity" wording appears too. SageMaker's own RetryStrategy only
retries inside one job; once the job has Failed, a new job is the only way on. Job names are unique forever, so
the retry is `<run name>-r<n>` (`$runName`); the checkpoint prefix is the run's (`$checkpointName`), so attempt
n+1 starts from attempt n's checkpoints. At most CAPACITY_RETRIES retries, 10 s, 20 s, 40 s apart (plus full
jitter of the same again: runs that lost capacity together should not come back together), each after the
capacity check.
"""

from __future__ import annotations

from typing import Any

CAPACITY_RETRIES = 3
CAPACITY_FAILURE_PATTERN = r"/^CapacityError|InsufficientInstanceCapacity|InsufficientCapacity/"
_DELAY = "10 * $power(2, $capacityRetries)"


def capacity_retry_states(*, retry_state: str, otherwise: str) -> dict[str, dict[str, Any]]:
    """`CapacityLost` (after DescribeFailure) -> `WaitToRetryCapacity` -> `retry_state`, else `otherwise`."""
    return {
        "CapacityLost": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": (
                        '{% $failureError = "TrainingJobFailed"'
                        f" and $contains($failureReason, {CAPACITY_FAILURE_PATTERN})"
                        f" and $capacityRetries < {CAPACITY_RETRIES} %}}"
                    ),
                    "Next": "WaitToRetryCapacity",
                }
            ],
            "Default": otherwise,
        },
        "WaitToRetryCapacity": {
            "Type": "Wait",
            "Seconds": f"{{% {_DELAY} + $floor($random() * {_DELAY}) %}}",
            "Assign": {
                "capacityRetries": "{% $capacityRetries + 1 %}",
                # After the run's name, not the checkpoint prefix: a run resumed from another's checkpoints must
                # not take that run's retry names (nor escape the pool cleanup, which finds jobs by run name).
                "jobName": '{% $runName & "-r" & ($capacityRetries + 1) %}',
                # A new wait budget for the new job, as for a fresh run.
                "capacityWaited": 0,
                "capacityPolls": 0,
            },
            "Next": retry_state,
        },
    }
