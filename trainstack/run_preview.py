"""Preview a run without AWS: evaluate the state machine's own JSONata for an input.

Takes the definition exactly as synthesized (or as deployed, from DescribeStateMachine) and evaluates
its Validate, Prepare, NameJob, CountUsage (pool key), DecideWarmPool and BuildRequest expressions with
`jsonata-python`, for given quota values and retained pools. The result is the list of input problems, or the
CreateTrainingJob request the Train state would send. Tests use it to check every rendered request
against botocore's SageMaker model; `trainstack run --dry-run` shows it to users.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from trainstack.step_functions_jsonata import NotAJsonataLiteral, compile_expression, jsonata_literal

# A deploy-time value (an ARN, a subnet id) inside a synthesized definition: a stand-in of the right type.
DEPLOY_TIME_PLACEHOLDER = "arn:aws:cdk:::deploy-time-value"


@dataclass
class Preview:
    problems: list[str] = field(default_factory=list)
    run: dict[str, Any] | None = None
    job_name: str | None = None
    warm_pool: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    pool_key: str | None = None  # the attributes a reusable warm pool must match, as DecideWarmPool compares them


def _body(expression: str) -> str:
    text = expression.strip()
    if not (text.startswith("{%") and text.endswith("%}")):
        raise ValueError(f"not a JSONata expression: {text[:40]!r}")
    return text[2:-2]


def _timestamp(value: Any) -> str:
    # boto3 parses AWS timestamps (a DescribeTrainingJob's CreationTime) into datetimes; an SDK integration's
    # result carries them as ISO 8601 text, which is what the expressions would see on AWS.
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def evaluate(expression: str, states: dict[str, Any], variables: dict[str, Any] | None = None) -> Any:
    """Evaluate one `{% ... %}` expression with `$states` and workflow variables bound, as Step Functions does."""
    bindings = {"states": states, **(variables or {})}
    literals = {name: json.dumps(value, default=_timestamp) for name, value in bindings.items()}
    try:
        # Bound in a frame around the block, as if declared at its start: the block's parse is then the same
        # for every input and compiled once.
        values = {name: jsonata_literal(literal) for name, literal in literals.items()}
    except NotAJsonataLiteral:
        prelude = "".join(f"${name} := {literal};" for name, literal in literals.items())
        result = compile_expression(f"({prelude}{_body(expression)})").evaluate(None)
    else:
        result = compile_expression(f"({_body(expression)})").evaluate(None, values)
    return json.loads(json.dumps(result))


def definition_from_template(definition_string: Any) -> dict[str, Any]:
    """The ASL of a synthesized `AWS::StepFunctions::StateMachine` (its `Fn::Join`, tokens stood in)."""
    if isinstance(definition_string, str):
        return json.loads(definition_string)
    parts = definition_string["Fn::Join"][1]
    return json.loads("".join(part if isinstance(part, str) else DEPLOY_TIME_PLACEHOLDER for part in parts))


def preview(
    definition: dict[str, Any],
    run_input: Any,
    *,
    quotas: dict[str, Any],
    pools: list[dict[str, Any]] | None = None,
    execution_name: str = "preview-0000",
    start_time: str = "2026-01-01T00:00:00.000Z",
) -> Preview:
    states = definition["States"]
    context = {
        "Execution": {
            "Id": f"arn:aws:states:::execution:preview:{execution_name}",
            "Name": execution_name,
            "StartTime": start_time,
        }
    }
    here = {"input": run_input, "context": context}
    problems = evaluate(states["Validate"]["Assign"]["problems"], here)
    if problems:
        return Preview(problems=list(problems) if isinstance(problems, list) else [problems])
    run = evaluate(states["Prepare"]["Assign"]["run"], here)
    job_name = evaluate(states["NameJob"]["Assign"]["jobName"], here, {"run": run})
    pool_key = evaluate(
        states["CountUsage"]["Assign"]["poolKey"],
        here,
        {"run": run, "jobName": job_name, "checkpointName": job_name, "warmPool": {"granted": 0}},
    )
    warm_pool = evaluate(
        states["DecideWarmPool"]["Assign"]["warmPool"],
        here,
        {"run": run, "quotas": quotas, "pools": pools or [], "poolKey": pool_key},
    )
    request = evaluate(
        states["BuildRequest"]["Assign"]["request"],
        here,
        {"run": run, "jobName": job_name, "checkpointName": job_name, "warmPool": warm_pool},
    )
    return Preview(run=run, job_name=job_name, warm_pool=warm_pool, request=request, pool_key=pool_key)


def held_instances(definition: dict[str, Any], described_job: dict[str, Any]) -> dict[str, Any]:
    """A DescribeTrainingJob answer as the DescribeUsage map records it (type, count, statuses, pool key)."""
    describer = definition["States"]["DescribeUsage"]["ItemProcessor"]["States"]["DescribeHeldInstances"]
    return evaluate(describer["Output"], {"input": described_job["TrainingJobName"], "result": described_job})
