"""What is using SageMaker capacity now: instances of running jobs and instances kept in warm pools.

Counted as the quota checks count them: the training-job quota covers running jobs plus instances held in
Available pools (an InUse pool's instances are the running job's own); the warm-pool quota covers
pools that are Available or InUse.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RETAINED_POOL_STATUSES = ("Available", "InUse")
ALL_POOL_STATUSES = ("Available", "InUse", "Reused", "Terminated")


def _names(sagemaker: Any, **filters: Any) -> list[str]:
    pages = sagemaker.get_paginator("list_training_jobs").paginate(**filters)
    return [job["TrainingJobName"] for page in pages for job in page["TrainingJobSummaries"]]


def _describe_all(sagemaker: Any, names: list[str]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda name: sagemaker.describe_training_job(TrainingJobName=name), names))


def running_jobs(sagemaker: Any) -> list[dict[str, Any]]:
    return _describe_all(sagemaker, _names(sagemaker, StatusEquals="InProgress"))


def warm_pools(sagemaker: Any, statuses: tuple[str, ...] = RETAINED_POOL_STATUSES) -> list[dict[str, Any]]:
    """DescribeTrainingJob of every job whose warm pool is in one of `statuses`, newest first."""
    names = list(dict.fromkeys(n for status in statuses for n in _names(sagemaker, WarmPoolStatusEquals=status)))
    jobs = _describe_all(sagemaker, names)
    return sorted(jobs, key=lambda job: job.get("CreationTime") or 0, reverse=True)


def instances(job: dict[str, Any]) -> tuple[str, int]:
    resources = job.get("ResourceConfig", {})
    return resources.get("InstanceType", "?"), int(resources.get("InstanceCount", 0))


@dataclass
class Usage:
    running: Counter[str] = field(default_factory=Counter)  # instances of InProgress jobs
    available: Counter[str] = field(default_factory=Counter)  # instances in Available pools
    in_use: Counter[str] = field(default_factory=Counter)  # instances in pools a running job took over

    def training(self, instance_type: str) -> int:
        return self.running[instance_type] + self.available[instance_type]

    def warm_pool(self, instance_type: str) -> int:
        return self.available[instance_type] + self.in_use[instance_type]

    def types(self) -> set[str]:
        return {t for counter in (self.running, self.available, self.in_use) for t, n in counter.items() if n}


def current_usage(sagemaker: Any) -> tuple[Usage, list[dict[str, Any]]]:
    """The usage, and the retained pools it was counted from (the dry run needs those too)."""
    usage = Usage()
    for job in running_jobs(sagemaker):
        kind, count = instances(job)
        usage.running[kind] += count
    pools = warm_pools(sagemaker)
    for job in pools:
        kind, count = instances(job)
        status = job.get("WarmPoolStatus", {}).get("Status")
        (usage.available if status == "Available" else usage.in_use)[kind] += count
    return usage, pools
