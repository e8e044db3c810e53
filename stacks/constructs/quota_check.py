"""Quota awareness: the states that read SageMaker quotas and decide the warm pool, and the IAM they need.

Decision, in order:
1. Quota codes come from the shipped table (`trainstack/data/sagemaker_training_quota_codes.json`) when it
   knows the instance type; otherwise the state machine pages through `ListServiceQuotas` for service
   `sagemaker` and matches the exact names "ml.X for training job usage" / "ml.X for training warm pool
   usage" (the public table lacks, for one, the seed's ml.p4de.24xlarge).
2. Each quota's applied value (`GetServiceQuota`), falling back to the AWS default
   (`GetAWSDefaultServiceQuota`); a quota that exists nowhere has value null.
3. `QuotaExceeded` when the run asks for more instances than the training-job quota, or a longer
   max runtime than "Longest run time for a training job" (L-33A961FD).
4. Warm pool: headroom = warm-pool quota - instances already retained in pools of that type (Available
   or InUse) + the instances of an Available pool this run will reuse (same type and count). The
   keep-alive is granted only when the headroom covers the run; otherwise 0, with the reason.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from stacks.constructs.scoped_policy import ScopedPolicy
from trainstack.config import REPO_ROOT, EnvironmentConfig, ResourceNames

QUOTA_TABLE_PATH = REPO_ROOT / "trainstack" / "data" / "sagemaker_training_quota_codes.json"
LONGEST_RUN_TIME = {"code": "L-33A961FD", "name": "Longest run time for a training job"}
_SDK = "arn:aws:states:::aws-sdk"
# Service Quotas and SageMaker throttle list/describe calls under load; these reads are safe to repeat.
# aws-sdk tasks name errors `<Prefix>.<Java SDK v2 exception>`: Service Quotas models TooManyRequestsException;
# SageMaker's model has no throttling error, so a throttled call is the base `SageMaker.SageMakerException`,
# the same name as its other unmodelled errors (access denied, validation): those are retried briefly only.
_THROTTLE_RETRY = [
    {
        "ErrorEquals": ["ServiceQuotas.TooManyRequestsException", "States.Timeout"],
        "IntervalSeconds": 2,
        "BackoffRate": 2,
        "MaxAttempts": 5,
        "JitterStrategy": "FULL",
    },
    {
        "ErrorEquals": ["SageMaker.SageMakerException"],
        "IntervalSeconds": 1,
        "BackoffRate": 2,
        "MaxAttempts": 3,
        "JitterStrategy": "FULL",
    },
]


@cache
def _quota_table() -> dict[str, dict[str, str]]:
    return json.loads(QUOTA_TABLE_PATH.read_text(encoding="utf-8"))["instance_types"]


def known_quota_codes(config: EnvironmentConfig) -> dict[str, dict[str, str]]:
    """Codes for the environment's allowed families only, to keep the definition small."""
    families = set(config.training.allowed_instance_families)
    return {
        instance_type: {
            "training": codes.get("training_job_usage"),
            "warm_pool": codes.get("training_warm_pool_usage"),
        }
        for instance_type, codes in _quota_table().items()
        if instance_type.split(".")[1] in families
    }


def _quota_lookup_processor() -> dict[str, Any]:
    item = "$states.input"
    found = lambda source, value: (  # noqa: E731 - a tiny template, used three times below
        f'{{% {{"key": {item}.key, "code": {item}.code, "name": {item}.name, "value": {value}, "source": "{source}"}} %}}'
    )
    back_to_item = [{"ErrorEquals": ["States.ALL"], "Output": "{% $states.input %}"}]
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "HasQuotaCode",
        "States": {
            "HasQuotaCode": {
                "Type": "Choice",
                "Choices": [{"Condition": f'{{% $type({item}.code) = "string" %}}', "Next": "GetAppliedQuota"}],
                "Default": "QuotaNotFound",
            },
            "GetAppliedQuota": {
                "Type": "Task",
                "Resource": f"{_SDK}:servicequotas:getServiceQuota",
                "Arguments": {"ServiceCode": "sagemaker", "QuotaCode": f"{{% {item}.code %}}"},
                "Output": found("applied", "$states.result.Quota.Value"),
                "Retry": _THROTTLE_RETRY,
                # Not applied in this account (NoSuchResource) or not readable: try the AWS default.
                "Catch": [{**back_to_item[0], "Next": "GetDefaultQuota"}],
                "End": True,
            },
            "GetDefaultQuota": {
                "Type": "Task",
                "Resource": f"{_SDK}:servicequotas:getAWSDefaultServiceQuota",
                "Arguments": {"ServiceCode": "sagemaker", "QuotaCode": f"{{% {item}.code %}}"},
                "Output": found("aws default", "$states.result.Quota.Value"),
                "Retry": _THROTTLE_RETRY,
                "Catch": [{**back_to_item[0], "Next": "QuotaNotFound"}],
                "End": True,
            },
            "QuotaNotFound": {"Type": "Pass", "Output": found("not found", "null"), "End": True},
        },
    }


def _retained_pool_lister() -> dict[str, Any]:
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "ListPoolsInStatus",
        "States": {
            "ListPoolsInStatus": {
                "Type": "Task",
                "Resource": f"{_SDK}:sagemaker:listTrainingJobs",
                "Arguments": {"WarmPoolStatusEquals": "{% $states.input %}", "MaxResults": 100},
                "Output": "{% [$states.result.TrainingJobSummaries.TrainingJobName] %}",
                "Retry": _THROTTLE_RETRY,
                "End": True,
            }
        },
    }


def _retained_pool_describer() -> dict[str, Any]:
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "DescribePool",
        "States": {
            "DescribePool": {
                "Type": "Task",
                "Resource": f"{_SDK}:sagemaker:describeTrainingJob",
                "Arguments": {"TrainingJobName": "{% $states.input %}"},
                "Output": (
                    '{% {"job": $states.result.TrainingJobName, "type": $states.result.ResourceConfig.InstanceType,'
                    ' "count": $states.result.ResourceConfig.InstanceCount,'
                    ' "status": $states.result.WarmPoolStatus.Status} %}'
                ),
                "Retry": _THROTTLE_RETRY,
                "End": True,
            }
        },
    }


def quota_states(config: EnvironmentConfig, *, next_state: str, exceeded_state: str) -> dict[str, dict[str, Any]]:
    """States from quota-code resolution to the warm-pool decision (`$warmPool`), then `next_state`."""
    codes = json.dumps(known_quota_codes(config), separators=(",", ":"), sort_keys=True)
    region = config.region
    return {
        "ResolveQuotaCodes": {
            "Type": "Pass",
            "Assign": {
                "quotaNames": (
                    '{% {"training": $run.instance_type & " for training job usage",'
                    ' "warm_pool": $run.instance_type & " for training warm pool usage"} %}'
                ),
                "quotaCodes": (
                    f"{{% ($known := $lookup({codes}, $run.instance_type);"
                    ' {"training": $known.training ? $known.training : null,'
                    ' "warm_pool": $known.warm_pool ? $known.warm_pool : null}) %}'
                ),
                "quotaPageToken": None,
                "quotaPages": 0,
                "pools": [],
            },
            "Next": "NeedQuotaCodes",
        },
        "NeedQuotaCodes": {
            "Type": "Choice",
            "Choices": [
                {
                    # Page on while a needed code is missing and the listing has more pages.
                    "Condition": (
                        '{% ($not($type($quotaCodes.training) = "string")'
                        ' or ($run.keep_alive_seconds > 0 and $not($type($quotaCodes.warm_pool) = "string")))'
                        ' and ($quotaPages = 0 or $type($quotaPageToken) = "string") %}'
                    ),
                    "Next": "ListQuotaPage",
                }
            ],
            "Default": "GetQuotas",
        },
        "ListQuotaPage": {
            "Type": "Task",
            "Resource": f"{_SDK}:servicequotas:listServiceQuotas",
            "Arguments": (
                '{% $merge([{"ServiceCode": "sagemaker", "MaxResults": 100},'
                ' $type($quotaPageToken) = "string" ? {"NextToken": $quotaPageToken}]) %}'
            ),
            "Assign": {
                "quotaCodes": (
                    "{% ($q := $states.result.Quotas;"
                    " $t := $q[QuotaName = $quotaNames.training].QuotaCode;"
                    " $w := $q[QuotaName = $quotaNames.warm_pool].QuotaCode;"
                    ' {"training": $quotaCodes.training ? $quotaCodes.training : ($t ? $t[0] : null),'
                    ' "warm_pool": $quotaCodes.warm_pool ? $quotaCodes.warm_pool : ($w ? $w[0] : null)}) %}'
                ),
                "quotaPageToken": "{% $states.result.NextToken ? $states.result.NextToken : null %}",
                "quotaPages": "{% $quotaPages + 1 %}",
            },
            "Retry": _THROTTLE_RETRY,
            "Next": "NeedQuotaCodes",
        },
        "GetQuotas": {
            "Type": "Map",
            "Items": (
                '{% [{"key": "training", "code": $quotaCodes.training, "name": $quotaNames.training},'
                ' {"key": "warm_pool", "code": $quotaCodes.warm_pool, "name": $quotaNames.warm_pool},'
                f' {{"key": "max_runtime", "code": "{LONGEST_RUN_TIME["code"]}", "name": "{LONGEST_RUN_TIME["name"]}"}}] %}}'
            ),
            "MaxConcurrency": 3,
            "ItemProcessor": _quota_lookup_processor(),
            "Assign": {"quotas": "{% $merge($map($states.result, function($q) { {$q.key: $q} })) %}"},
            "Next": "CheckQuotas",
        },
        "CheckQuotas": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": (
                        '{% $type($quotas.training.value) = "number" and $run.instance_count > $quotas.training.value %}'
                    ),
                    "Assign": {
                        "quotaProblem": (
                            '{% "The quota \\"" & $quotas.training.name & "\\" (" & $quotas.training.code & ") is "'
                            ' & $quotas.training.value & " in ' + region + '; this run asks for " & $run.instance_count'
                            ' & " instance(s). Request an increase in Service Quotas or lower instance_count." %}'
                        )
                    },
                    "Next": exceeded_state,
                },
                {
                    "Condition": (
                        '{% $type($quotas.max_runtime.value) = "number"'
                        " and $run.max_runtime_seconds > $quotas.max_runtime.value %}"
                    ),
                    "Assign": {
                        "quotaProblem": (
                            '{% "The quota \\"'
                            + LONGEST_RUN_TIME["name"]
                            + '\\" ('
                            + LONGEST_RUN_TIME["code"]
                            + ') is "'
                            ' & $quotas.max_runtime.value & " seconds; max_runtime_seconds asks for "'
                            ' & $run.max_runtime_seconds & ". Request an increase (up to 28 days) or lower max_runtime_seconds." %}'
                        )
                    },
                    "Next": exceeded_state,
                },
            ],
            "Default": "WarmPoolWanted",
        },
        "WarmPoolWanted": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": (
                        '{% $run.keep_alive_seconds > 0 and $type($quotas.warm_pool.value) = "number"'
                        " and $quotas.warm_pool.value > 0 %}"
                    ),
                    "Next": "FindRetainedPools",
                }
            ],
            "Default": "DecideWarmPool",
        },
        "FindRetainedPools": {
            "Type": "Map",
            "Items": ["Available", "InUse"],
            "ItemProcessor": _retained_pool_lister(),
            "Assign": {"retainedJobs": "{% $reduce($states.result, function($a, $b) { $append($a, $b) }, []) %}"},
            "Next": "DescribeRetainedPools",
        },
        "DescribeRetainedPools": {
            "Type": "Map",
            "Items": "{% $retainedJobs %}",
            "MaxConcurrency": 5,
            "ItemProcessor": _retained_pool_describer(),
            "Assign": {"pools": "{% $states.result %}"},
            "Next": "DecideWarmPool",
        },
        "DecideWarmPool": {
            "Type": "Pass",
            "Assign": {"warmPool": _WARM_POOL_DECISION.replace("__REGION__", region)},
            "Next": next_state,
        },
    }


_WARM_POOL_DECISION = r"""{% (
  $requested := $run.keep_alive_seconds;
  $n := $run.instance_count;
  $q := $quotas.warm_pool;
  $mine := $pools[type = $run.instance_type];
  $retained := $count($mine) > 0 ? $sum($mine.count) : 0;
  $reusable := $pools[type = $run.instance_type and count = $n and status = "Available"][0];
  $headroom := $type($q.value) = "number" ? $q.value - $retained + ($reusable ? $reusable.count : 0) : 0;
  $base := {"requested": $requested, "quota": $q.value, "quota_code": $q.code, "retained": $retained,
            "headroom": $headroom, "reusable_pool": $reusable ? $reusable.job : null};
  $merge([$base,
    $requested = 0 ? {"granted": 0, "reason": "not requested (keep_alive_seconds is 0)"}
    : $not($type($q.value) = "number") ? {"granted": 0, "reason": "no quota named \"" & $q.name
        & "\" exists in __REGION__, so SageMaker would not keep a pool; the job runs without one"}
    : $q.value = 0 ? {"granted": 0, "reason": "warm-pool quota \"" & $q.name & "\" (" & $q.code & ") is 0 in this"
        & " account, so SageMaker would keep no pool; the job runs without one. Request an increase to use warm pools"}
    : $headroom >= $n ? {"granted": $requested, "reason": "warm-pool quota \"" & $q.name & "\" (" & $q.code & ") is "
        & $q.value & " with " & $retained & " instance(s) retained; headroom " & $headroom & " covers " & $n
        & ($reusable ? " (reusing the pool of " & $reusable.job & ")" : "")}
    : {"granted": 0, "reason": "warm-pool quota \"" & $q.name & "\" (" & $q.code & ") is " & $q.value & " with "
        & $retained & " instance(s) already retained; keeping " & $n & " more would exceed it, so the job runs"
        & " without a warm pool. Raise the quota or release a pool (trainstack pools release)"}
  ])
) %}"""


def grant_quota_reads(policy: ScopedPolicy, names: ResourceNames) -> None:
    # GetServiceQuota has no resource types in the Service Authorization Reference: a statement scoped to
    # quota ARNs (servicequotas:...:sagemaker/*) never matches it (tests/test_iam_lint.py found this).
    policy.allow(
        "ReadQuotasAndListJobs",
        [
            "servicequotas:GetServiceQuota",
            "servicequotas:ListServiceQuotas",
            "servicequotas:GetAWSDefaultServiceQuota",
            "sagemaker:ListTrainingJobs",
        ],
        ["*"],
        wildcard_reason="these quota reads and list calls support no resource-level permissions",
    )
    policy.allow(
        "DescribeRetainedPools",
        ["sagemaker:DescribeTrainingJob"],
        [names.arn("sagemaker", "training-job/*")],
        wildcard_reason="warm pools of any job in the account count against the quota, whatever its name",
    )
