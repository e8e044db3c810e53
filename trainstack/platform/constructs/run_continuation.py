"""Long runs continue in a fresh execution before Step Functions' 25,000-event history limit ends them.

A Standard execution fails with `States.Runtime` ("The execution reached the maximum number of history events
(25000).") at its 25,000th event (Step Functions Developer Guide, "Avoid reaching the history quota", which
recommends exactly this: start a new execution of the state machine from a Task state). The `.sync` task that
follows a job records no event per poll, so only the loops of the pipeline spend history: `WaitingForCapacity`
(each look at the account's usage) and `WaitForExistingJob` (each poll of an adopted job). Each loop adds what
it spent to `$historySpent`, an upper bound of the events the execution has recorded (the README shows the
arithmetic per look and per poll), and once it passes HISTORY_BUDGET the run continues: `ContinueRun` starts the
same state machine with the run's original input and what it must keep, and the execution ends SUCCEEDED with
`{"status": "Continued", "continuedIn": <ARN>}`.

What a continuation keeps, so that it is the same run: the run's name and its job's name (job names derive from
the first execution's ARN and start time, and SageMaker job names are unique forever), the checkpoint prefix,
the capacity retries made, the capacity wait spent (the wait budget is the run's, not the execution's), the
backoff reached, the warm-pool decision, and whether it follows an existing job. The original input is validated
again as any input is; the carried values are checked against the run's own `job_name_prefix` and limits
(`InvalidContinuation` otherwise). A hand-written continuation can only name jobs of the environment, which the
starting principal (the notebook role) may already describe and stop, so it grants nothing new.
"""

from __future__ import annotations

from typing import Any

from trainstack.config import ResourceNames
from trainstack.platform.constructs.capacity_retry import CAPACITY_RETRIES
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.constructs.training_run_input import RUN_SUFFIX_LENGTH

CONTINUATION_KEY = "trainstack_continuation"
# Events an execution may record before it hands over: 5,000 below the limit leaves room for one look or poll
# that costs more than counted (throttled calls retried, a look describing up to ~500 new jobs), and the states
# after the last loop (create, follow, describe a failure, notify, end: under 40 events).
HISTORY_LIMIT = 25_000
HISTORY_BUDGET = 20_000
# What an execution records before its first loop, at most: Start .. GetQuotas, a resume lookup, quota-code
# paging (ListServiceQuotas: one page per 100 SageMaker quotas).
HISTORY_BEFORE_LOOPS = 400

# The run's name: its prefix, a dash, 17 digits, a dash, 10 hex digits.
_VALID = (
    "{% ($c := $continuation; $p := $run.job_name_prefix; $name := $c.run_name;"
    ' $nat := function($v) { $type($v) = "number" and $v >= 0 and $v = $floor($v) };'
    ' $type($name) = "string" and $length($name) = $length($p) + 1 + ' + str(RUN_SUFFIX_LENGTH) + ""
    ' and $substring($name, 0, $length($p) + 1) = $p & "-"'
    " and $contains($substring($name, -" + str(RUN_SUFFIX_LENGTH) + "), /^[0-9]{17}-[0-9a-f]{10}$/)"
    " and $nat($c.capacity_retries) and $c.capacity_retries <= " + str(CAPACITY_RETRIES) + ""
    ' and $c.job_name = ($c.capacity_retries = 0 ? $name : $name & "-r" & $c.capacity_retries)'
    ' and $type($c.checkpoint_name) = "string" and $contains($c.checkpoint_name, /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/)'
    " and $nat($c.capacity_waited) and $c.capacity_waited <= $run.capacity_wait_seconds"
    ' and $nat($c.capacity_polls) and $nat($c.adopt_polls) and $nat($c.part) and $type($c.follow) = "boolean") %}'
)


def continuation_entry_states(*, next_state: str) -> dict[str, dict[str, Any]]:
    """`Start`: unwraps a continuation's input (the original input goes on to `next_state`, Validate)."""
    wrapped = f"$exists($states.input.{CONTINUATION_KEY})"
    return {
        "Start": {
            "Type": "Pass",
            "Assign": {
                # false, not null: the embedded AWS binds a null variable as undefined, AWS as null.
                "continuation": f"{{% {wrapped} ? $states.input.{CONTINUATION_KEY} : false %}}",
                "runInput": f"{{% {wrapped} ? $states.input.input : $states.input %}}",
                "historySpent": HISTORY_BEFORE_LOOPS,
            },
            "Output": f"{{% {wrapped} ? $states.input.input : $states.input %}}",
            "Next": next_state,
        }
    }


def continuation_states(
    *, fresh_run_state: str, capacity_state: str, follow_state: str, invalid_state: str
) -> dict[str, dict[str, Any]]:
    """`IsContinuation` (after the run is named) routes a continued run back into its loop; `ContinueRun` hands over."""
    carried = {
        "run_name": "{% $runName %}",
        "job_name": "{% $jobName %}",
        "checkpoint_name": "{% $checkpointName %}",
        "capacity_retries": "{% $capacityRetries %}",
        "capacity_waited": "{% $capacityWaited ? $capacityWaited : 0 %}",
        "capacity_polls": "{% $capacityPolls ? $capacityPolls : 0 %}",
        "adopt_polls": "{% $adoptPolls ? $adoptPolls : 0 %}",
        "warm_pool": "{% $warmPool %}",
        "follow": "{% $continueFollowing %}",
        "part": "{% $continuation ? $continuation.part + 1 : 1 %}",
    }
    return {
        "IsContinuation": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $continuation = false %}", "Next": fresh_run_state},
                {
                    "Condition": _VALID.replace("{% ", '{% $type($continuation) != "object" or $not(', 1).replace(
                        " %}", ") %}"
                    ),
                    "Assign": {
                        "continuationProblem": (
                            f'{{% "{CONTINUATION_KEY}: expected the run_name, job_name, checkpoint_name and counters'
                            ' that ContinueRun writes for a run named with job_name_prefix \\"" & $run.job_name_prefix'
                            ' & "\\"" %}'
                        )
                    },
                    "Next": invalid_state,
                },
                {
                    "Condition": "{% $continuation.follow = true %}",
                    "Assign": {
                        "adoptPolls": "{% $continuation.adopt_polls %}",
                        "warmPool": "{% $continuation.warm_pool %}",
                    },
                    "Next": follow_state,
                },
            ],
            "Default": capacity_state,
        },
        "ContinueRun": {
            "Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution",
            "Arguments": {
                "StateMachineArn": "{% $states.context.StateMachine.Id %}",
                # Stable per hand-over: a retried StartExecution with the same name and input is answered as
                # the first one was, so a lost answer cannot start the run twice.
                "Name": '{% $runName & "-part" & ($continuation ? $continuation.part + 1 : 1) %}',
                "Input": {
                    CONTINUATION_KEY: carried,
                    "input": "{% $runInput %}",
                    # Links the executions in the console ("Associate Workflow Executions").
                    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "{% $states.context.Execution.Id %}",
                },
            },
            "Output": '{% {"status": "Continued", "jobName": $jobName, "continuedIn": $states.result.ExecutionArn} %}',
            "Retry": [
                {
                    # Any refusal is retried a few times: throttling (`StepFunctions.*` error names differ between
                    # the optimized integration's documentation and implementations), and a lost answer, whose
                    # repeat with the same name and input is answered as the first.
                    "ErrorEquals": ["States.ALL"],
                    "IntervalSeconds": 2,
                    "BackoffRate": 2,
                    "MaxAttempts": 5,
                    "JitterStrategy": "FULL",
                }
            ],
            # The run cannot go on: fail it, so that the pool cleanup (which runs for FAILED runs) ends its jobs.
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Assign": {"continuationFailure": "{% $states.errorOutput %}"},
                    "Next": "ContinuationFailed",
                }
            ],
            "End": True,
        },
        "ContinuationFailed": {
            "Type": "Fail",
            "Error": "ContinuationFailed",
            "Cause": (
                '{% "the run could not continue in a fresh execution before the history limit: "'
                ' & $continuationFailure.Error & ": " & $continuationFailure.Cause %}'
            ),
        },
    }


def grant_continuation(policy: ScopedPolicy, names: ResourceNames) -> None:
    # By name, not by the construct's ARN: the state machine's own role cannot reference it without a cycle.
    policy.allow(
        "ContinueRunsInFreshExecutions",
        ["states:StartExecution"],
        [names.arn("states", f"stateMachine:{names.state_machine}")],
    )
