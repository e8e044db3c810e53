"""Quota awareness: the states that read SageMaker quotas and decide the warm pool, and the IAM they need.

Decision, in order:
1. Quota codes come from the shipped table (`trainstack/data/sagemaker_training_quota_codes.json`) when it
   knows the instance type; otherwise the state machine pages through `ListServiceQuotas` for service
   `sagemaker` and matches the exact names "ml.X for training job usage" / "ml.X for training warm pool
   usage" (the public table lacks, for one, the seed's ml.p4de.24xlarge).
2. Each quota's applied value (`GetServiceQuota`), falling back to the AWS default
   (`GetAWSDefaultServiceQuota`); a quota that exists nowhere has value null.
3. `QuotaExceeded` when the run asks for more instances than its instance quota (spot runs: "ml.X for spot
   training job usage"), or a longer max runtime than "Longest run time for a training job" (L-33A961FD).
4. Usage as SageMaker counts it: every job listed InProgress or Stopping, or with a warm pool Available or
   InUse (ListTrainingJobs paged to the end with NextToken, a Choice loop, no Lambda). Statuses come from the
   listing's summaries; a job's instance type, count, spot flag and pool attributes, which never change, from
   one DescribeTrainingJob per job per execution (`$poolCache`), so a look costs 16 + 7 × pages + 9 × new jobs
   history events, not a Describe of every job again.
5. Warm pool: headroom = warm-pool quota - instances retained in pools of that type (Available or InUse)
   + the instances of the Available pool this run will reuse. Reuse needs every attribute SageMaker compares
   (`pool_key`: role, type, count, volume size and KMS key, subnets, security groups, inter-container
   encryption, network isolation) to match the request this run sends. The keep-alive is granted only when
   the headroom covers the run; otherwise 0, with the reason.
6. Capacity: quota - instances held (running jobs and retained pools of the type; spot against spot) + the
   reused pool's. Short of it, the run waits in `WaitingForCapacity` (2, 4, 8 ... s between looks, then at most
   60 s or a sixth of the time waited so far, up to 10 minutes) for up to `capacity_wait_seconds`, then fails
   `CapacityUnavailable` with the arithmetic; 0 fails at once. Each look adds its events to `$historySpent`;
   past the budget the run continues in a fresh execution (run_continuation.py).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.package_data import data_file
from trainstack.platform.constructs.jsonata_text import one_line
from trainstack.platform.constructs.run_continuation import HISTORY_BUDGET
from trainstack.platform.constructs.scoped_policy import ScopedPolicy

QUOTA_TABLE = data_file("trainstack", "data/sagemaker_training_quota_codes.json")
LONGEST_RUN_TIME = {"code": "L-33A961FD", "name": "Longest run time for a training job"}
_SDK = "arn:aws:states:::aws-sdk"
# Service Quotas and SageMaker throttle list/describe calls under load; these reads are safe to repeat.
# aws-sdk tasks name errors `<Prefix>.<Java SDK v2 exception>`: Service Quotas models TooManyRequestsException;
# SageMaker's model has no throttling error, so a throttled call is the base `SageMaker.SageMakerException`,
# the same name as its other unmodelled errors (access denied, validation): those are retried briefly only.
_CHECK_FAILED = [
    {
        "ErrorEquals": ["States.ALL"],
        "Assign": {"capacityFailure": "{% $states.errorOutput %}"},
        "Next": "CapacityCheckFailed",
    }
]
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
    return json.loads(QUOTA_TABLE.read_text(encoding="utf-8"))["instance_types"]


def known_quota_codes(config: EnvironmentConfig) -> dict[str, dict[str, str]]:
    """Codes for the environment's allowed families only, to keep the definition small."""
    families = set(config.training.allowed_instance_families)
    return {
        instance_type: {
            "training": codes.get("training_job_usage"),
            "warm_pool": codes.get("training_warm_pool_usage"),
            "spot": codes.get("spot_training_job_usage"),
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


# What AWS counts against a training-job quota: instances of running jobs (Stopping ones still hold theirs) and
# instances retained in warm pools, Available or InUse (a job running on a reused pool is counted through it).
USAGE_FILTERS = [
    {"StatusEquals": "InProgress"},
    {"StatusEquals": "Stopping"},
    {"WarmPoolStatusEquals": "Available"},
    {"WarmPoolStatusEquals": "InUse"},
]


def pool_key(request: str) -> str:
    """JSONata: the attributes SageMaker requires to match for a warm pool's reuse, as one comparable string.

    `request` is a CreateTrainingJob request or a DescribeTrainingJob answer (both carry these fields the same
    way). Subnets and security groups compare as sets; absent booleans are false, as SageMaker defaults them."""
    r = request
    return (
        f"$string([{r}.RoleArn, {r}.ResourceConfig.InstanceType, {r}.ResourceConfig.InstanceCount,"
        f" {r}.ResourceConfig.VolumeSizeInGB, $exists({r}.ResourceConfig.VolumeKmsKeyId)"
        f' ? {r}.ResourceConfig.VolumeKmsKeyId : null, $join($sort([{r}.VpcConfig.Subnets]), ","),'
        f' $join($sort([{r}.VpcConfig.SecurityGroupIds]), ","), {r}.EnableInterContainerTrafficEncryption = true,'
        f" {r}.EnableNetworkIsolation = true])"
    )


def _usage_describer() -> dict[str, Any]:
    result = "$states.result"
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "DescribeHeldInstances",
        "States": {
            "DescribeHeldInstances": {
                "Type": "Task",
                "Resource": f"{_SDK}:sagemaker:describeTrainingJob",
                "Arguments": {"TrainingJobName": "{% $states.input %}"},
                "Output": (
                    f'{{% {{"job": {result}.TrainingJobName, "type": {result}.ResourceConfig.InstanceType,'
                    f' "count": {result}.ResourceConfig.InstanceCount,'
                    f' "status": $exists({result}.WarmPoolStatus.Status) ? {result}.WarmPoolStatus.Status : null,'
                    f' "jobStatus": {result}.TrainingJobStatus, "spot": {result}.EnableManagedSpotTraining = true,'
                    f' "key": {pool_key(result)}}} %}}'
                ),
                "Retry": _THROTTLE_RETRY,
                # Listed a moment ago, gone now (or unreadable): it holds nothing this run must count.
                "Catch": [{"ErrorEquals": ["States.ALL"], "Output": '{% {"job": $states.input} %}', "Next": "Gone"}],
                "End": True,
            },
            "Gone": {"Type": "Pass", "End": True},
        },
    }


# Headroom as SageMaker counts it at CreateTrainingJob: the run's quota (spot runs: "for spot training job usage")
# minus the instances of that type held by running jobs and retained warm pools (spot jobs count against the spot
# quota only, pools never are spot), plus the instances of the pool this run takes over.
_CAPACITY_DECISION = r"""{% (
  $n := $run.instance_count;
  $q := $jobQuota;
  $held := $pools[type = $run.instance_type and spot = $run.spot
    and (jobStatus in ["InProgress", "Stopping"] or status in ["Available", "InUse"])];
  $used := $count($held) > 0 ? $sum($held.count) : 0;
  $reused := $warmPool.granted > 0 and $type($warmPool.reusable_pool) = "string" ? $n : 0;
  $headroom := $type($q.value) = "number" ? $q.value - $used + $reused : null;
  $fits := $type($headroom) != "number" or $headroom >= $n;
  $left := $run.capacity_wait_seconds - $capacityWaited;
  {"fits": $fits, "quota": $q.value, "quota_code": $q.code, "in_use": $used, "reused": $reused,
   "headroom": $headroom, "needed": $n, "waited_seconds": $capacityWaited,
   "wait_limit_seconds": $run.capacity_wait_seconds,
   "reason": $fits ? "quota \"" & $q.name & "\" has room"
     : "quota \"" & $q.name & "\" (" & $q.code & ") is " & $q.value & " in __REGION__ with " & $used
       & " instance(s) held by running jobs and warm pools" & ($reused > 0 ? " (" & $reused & " of them the pool this run reuses)" : "")
       & "; this run needs " & $n & " and " & $headroom & " are free. "
       & ($left > 0 ? "Waiting for running jobs or pools to end (" & $capacityWaited & " of " & $run.capacity_wait_seconds & " s waited)"
         : "Gave up after " & $capacityWaited & " s (capacity_wait_seconds is " & $run.capacity_wait_seconds
           & "); raise it to wait longer, release a pool (trainstack pools release) or request a quota increase")}
) %}"""

# Poll with backoff: 2, 4, 8, ... seconds, then at most 60 s or a sixth of the time waited so far, up to 10 min
# (a 7-day wait is about 1,030 looks), never past capacity_wait_seconds.
MAX_LOOK_INTERVAL_SECONDS = 600
_CAPACITY_WAIT_STEP = (
    # The exponent is capped: 2^1024 is out of JSONata's number range, which would fail the run after ~1,000 looks.
    "$min([$run.capacity_wait_seconds - $capacityWaited, 2 * $power(2, $min([$capacityPolls, 10])),"
    f" $max([60, $floor($capacityWaited / 6)]), {MAX_LOOK_INTERVAL_SECONDS}])"
)
# History events of one look, from WaitingForCapacity to HasCapacity: Wait, CountUsage, CountHeld, DecideWarmPool,
# DecideCapacity and HasCapacity (2 each) and the DescribeUsage Map's own 4; each page listed adds a Task (5) and
# MoreUsagePages (2); each job described adds its iteration (2), its Task (5) and, gone since listed, a Pass (2).
LOOK_EVENTS, PAGE_EVENTS, DESCRIBE_EVENTS = 16, 7, 9


def capacity_wait_states(*, retry_state: str) -> dict[str, dict[str, Any]]:
    """`WaitingForCapacity`: sleep one backoff step, then count usage again from `retry_state`."""
    return {
        "WaitingForCapacity": {
            "Type": "Wait",
            "Seconds": f"{{% {_CAPACITY_WAIT_STEP} %}}",
            "Assign": {
                "capacityWaited": f"{{% $capacityWaited + {_CAPACITY_WAIT_STEP} %}}",
                "capacityPolls": "{% $capacityPolls + 1 %}",
            },
            "Next": retry_state,
        },
    }


def quota_states(
    config: EnvironmentConfig, *, draft_request: str, next_state: str, exceeded_state: str
) -> dict[str, dict[str, Any]]:
    """States from quota-code resolution to the warm-pool and capacity decisions, then `next_state`.

    `draft_request` is the CreateTrainingJob request expression: a pool is reused only when every attribute
    SageMaker compares matches the request this run will send."""
    codes = json.dumps(known_quota_codes(config), separators=(",", ":"), sort_keys=True)
    region = config.region
    return {
        "ResolveQuotaCodes": {
            "Type": "Pass",
            "Assign": {
                "quotaNames": (
                    '{% {"training": $run.instance_type & " for training job usage",'
                    ' "warm_pool": $run.instance_type & " for training warm pool usage",'
                    ' "spot": $run.instance_type & " for spot training job usage"} %}'
                ),
                "quotaCodes": (
                    f"{{% ($known := $lookup({codes}, $run.instance_type);"
                    ' {"training": $known.training ? $known.training : null,'
                    ' "warm_pool": $known.warm_pool ? $known.warm_pool : null,'
                    ' "spot": $known.spot ? $known.spot : null}) %}'
                ),
                "quotaPageToken": None,
                "quotaPages": 0,
                "pools": [],
                # No keep-alive until DecideWarmPool grants one; the draft request for pool matching reads it.
                "warmPool": {"granted": 0},
                # A continued run keeps its wait (run_continuation.py); a capacity retry (a new job) starts anew.
                "capacityWaited": "{% $continuation and $continuation.follow = false ? $continuation.capacity_waited : 0 %}",
                "capacityPolls": "{% $continuation and $continuation.follow = false ? $continuation.capacity_polls : 0 %}",
                # Pool attributes by job name: they never change, so each job is described once per execution.
                "poolCache": {},
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
                        ' or ($run.keep_alive_seconds > 0 and $not($type($quotaCodes.warm_pool) = "string"))'
                        ' or ($run.spot and $not($type($quotaCodes.spot) = "string")))'
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
                    " $s := $q[QuotaName = $quotaNames.spot].QuotaCode;"
                    ' {"training": $quotaCodes.training ? $quotaCodes.training : ($t ? $t[0] : null),'
                    ' "warm_pool": $quotaCodes.warm_pool ? $quotaCodes.warm_pool : ($w ? $w[0] : null),'
                    ' "spot": $quotaCodes.spot ? $quotaCodes.spot : ($s ? $s[0] : null)}) %}'
                ),
                "quotaPageToken": "{% $states.result.NextToken ? $states.result.NextToken : null %}",
                "quotaPages": "{% $quotaPages + 1 %}",
            },
            "Retry": _THROTTLE_RETRY,
            "Catch": _CHECK_FAILED,
            "Next": "NeedQuotaCodes",
        },
        "GetQuotas": {
            "Type": "Map",
            "Items": (
                '{% $append([{"key": "training", "code": $quotaCodes.training, "name": $quotaNames.training},'
                ' {"key": "warm_pool", "code": $quotaCodes.warm_pool, "name": $quotaNames.warm_pool},'
                f' {{"key": "max_runtime", "code": "{LONGEST_RUN_TIME["code"]}", "name": "{LONGEST_RUN_TIME["name"]}"}}],'
                # The spot quota only for spot runs: one lookup (and its fallback) fewer for every other run.
                ' $run.spot ? [{"key": "spot", "code": $quotaCodes.spot, "name": $quotaNames.spot}] : []) %}'
            ),
            "MaxConcurrency": 4,
            "ItemProcessor": _quota_lookup_processor(),
            "Assign": {
                "quotas": "{% $merge($map($states.result, function($q) { {$q.key: $q} })) %}",
                # The quota CreateTrainingJob checks this run against: spot runs have their own.
                "jobQuota": '{% $states.result[key = ($run.spot ? "spot" : "training")] %}',
            },
            "Catch": _CHECK_FAILED,
            "Next": "CheckQuotas",
        },
        "CheckQuotas": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": '{% $type($jobQuota.value) = "number" and $run.instance_count > $jobQuota.value %}',
                    "Assign": {
                        "quotaProblem": (
                            '{% "The quota \\"" & $jobQuota.name & "\\" (" & $jobQuota.code & ") is "'
                            ' & $jobQuota.value & " in ' + region + '; this run asks for " & $run.instance_count'
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
            "Default": "CountUsage",
        },
        # Every job holding instances, paged to the end of each listing (ListTrainingJobs has no type filter).
        "CountUsage": {
            "Type": "Pass",
            "Assign": {
                "usageFilter": 0,
                "usageToken": None,
                "usageJobs": [],
                "usagePages": 0,
                "poolKey": one_line(
                    "{% ($r := (" + draft_request.strip()[2:-2].strip() + "); " + pool_key("$r") + ") %}"
                ),
            },
            "Next": "ListUsagePage",
        },
        "ListUsagePage": {
            "Type": "Task",
            "Resource": f"{_SDK}:sagemaker:listTrainingJobs",
            "Arguments": (
                f'{{% $merge([{json.dumps(USAGE_FILTERS, separators=(",", ":"))}[$usageFilter], {{"MaxResults": 100}},'
                ' $type($usageToken) = "string" ? {"NextToken": $usageToken}]) %}'
            ),
            "Assign": {
                "usageJobs": (
                    '{% $append($usageJobs, [$states.result.TrainingJobSummaries.{"job": TrainingJobName,'
                    ' "jobStatus": TrainingJobStatus, "status": WarmPoolStatus.Status}]) %}'
                ),
                "usagePages": "{% $usagePages + 1 %}",
                "usageToken": "{% $states.result.NextToken ? $states.result.NextToken : null %}",
                "usageFilter": "{% $states.result.NextToken ? $usageFilter : $usageFilter + 1 %}",
            },
            "Retry": _THROTTLE_RETRY,
            "Catch": _CHECK_FAILED,
            "Next": "MoreUsagePages",
        },
        "MoreUsagePages": {
            "Type": "Choice",
            "Choices": [{"Condition": f"{{% $usageFilter < {len(USAGE_FILTERS)} %}}", "Next": "ListUsagePage"}],
            "Default": "DescribeUsage",
        },
        "DescribeUsage": {
            "Type": "Map",
            # Only jobs this execution has not described yet.
            "Items": (
                "{% ($new := $filter($distinct([$usageJobs.job]), function($j) { $not($exists($lookup($poolCache, $j))) });"
                " $new ? [$new] : []) %}"
            ),
            "MaxConcurrency": 10,
            "ItemProcessor": _usage_describer(),
            "Assign": {
                "poolCache": (
                    '{% $merge([$poolCache, $states.result[$exists(type)].{job: {"type": type, "count": count,'
                    ' "spot": spot, "key": key}}]) %}'
                ),
                "lookDescribed": "{% $count($states.result) %}",
            },
            "Catch": _CHECK_FAILED,
            "Next": "CountHeld",
        },
        # Each listed job with its attributes and its statuses as listed now.
        "CountHeld": {
            "Type": "Pass",
            "Assign": {
                "pools": (
                    '{% ($statuses := $merge([$usageJobs.{job: {"jobStatus": jobStatus, "status": status}}]);'
                    " [$map($distinct([$usageJobs.job]), function($j) { ($a := $lookup($poolCache, $j);"
                    " $s := $lookup($statuses, $j);"
                    ' $a ? {"job": $j, "type": $a.type, "count": $a.count, "spot": $a.spot, "key": $a.key,'
                    ' "jobStatus": $s.jobStatus, "status": $s.status}) })]) %}'
                ),
                "historySpent": (
                    f"{{% $historySpent + {LOOK_EVENTS} + {PAGE_EVENTS} * $usagePages"
                    f" + {DESCRIBE_EVENTS} * $lookDescribed %}}"
                ),
            },
            "Next": "DecideWarmPool",
        },
        "DecideWarmPool": {
            "Type": "Pass",
            "Assign": {"warmPool": one_line(_WARM_POOL_DECISION.replace("__REGION__", region))},
            "Next": "DecideCapacity",
        },
        # The decision is this state's output, so `WaitingForCapacity`'s input in the history carries its reason.
        "DecideCapacity": {
            "Type": "Pass",
            "Output": one_line(_CAPACITY_DECISION.replace("__REGION__", region)),
            "Next": "HasCapacity",
        },
        "HasCapacity": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $states.input.fits %}", "Next": next_state},
                {
                    "Condition": f"{{% $capacityWaited < $run.capacity_wait_seconds and $historySpent >= {HISTORY_BUDGET} %}}",
                    "Assign": {"continueFollowing": False},
                    "Next": "ContinueRun",
                },
                {"Condition": "{% $capacityWaited < $run.capacity_wait_seconds %}", "Next": "WaitingForCapacity"},
            ],
            "Default": "CapacityUnavailable",
        },
        **capacity_wait_states(retry_state="CountUsage"),
        # A capacity retry (capacity_retry.py) counts usage again; a run continued while it followed a job has
        # not resolved its quotas in this execution yet.
        "RetryCapacityCheck": {
            "Type": "Choice",
            "Choices": [{"Condition": '{% $type($jobQuota) = "object" %}', "Next": "CountUsage"}],
            "Default": "ResolveQuotaCodes",
        },
        "CapacityUnavailable": {"Type": "Fail", "Error": "CapacityUnavailable", "Cause": "{% $states.input.reason %}"},
        "CapacityCheckFailed": {
            "Type": "Fail",
            "Error": "CapacityCheckFailed",
            "Cause": "{% $capacityFailure.Error & ': ' & $capacityFailure.Cause %}",
        },
    }


_WARM_POOL_DECISION = r"""{% (
  $requested := $run.keep_alive_seconds;
  $n := $run.instance_count;
  $q := $quotas.warm_pool;
  $mine := $pools[type = $run.instance_type and status in ["Available", "InUse"]];
  $retained := $count($mine) > 0 ? $sum($mine.count) : 0;
  $reusable := $pools[status = "Available" and key = $poolKey][0];
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
