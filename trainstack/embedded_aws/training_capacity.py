"""Quota and warm-pool accounting of the embedded SageMaker: which instances the account holds, whether a new job
fits its quota, which retained pool it may take over, and when a pool is kept, reused or ends.

The methods read and change the jobs the executor holds and must be called with its lock held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from trainstack.config import EmbeddedQuotas

from .json_protocol import AwsError
from .sagemaker_quotas import quota_name
from .time_scale import TIME_SCALE
from .training_job_state import TrainingJob, WarmPool, utcnow

# What AWS lists as having to match for a job to run on another job's warm pool ("Warm pool matching").
WARM_POOL_MATCH = (
    "RoleArn",
    "InstanceType",
    "InstanceCount",
    "VolumeSizeInGB",
    "VolumeKmsKeyId",
    "VpcConfig.Subnets",
    "VpcConfig.SecurityGroupIds",
    "EnableInterContainerTrafficEncryption",
    "EnableNetworkIsolation",
)


def warm_pool_attributes(request: dict[str, Any]) -> dict[str, Any]:
    """The request's values of WARM_POOL_MATCH, normalised: SageMaker's defaults, subnets and groups as sets."""
    resources = request["ResourceConfig"]
    vpc = request.get("VpcConfig") or {}
    return {
        "RoleArn": request["RoleArn"],
        "InstanceType": resources["InstanceType"],
        "InstanceCount": resources["InstanceCount"],
        "VolumeSizeInGB": resources.get("VolumeSizeInGB"),
        "VolumeKmsKeyId": resources.get("VolumeKmsKeyId"),
        "VpcConfig.Subnets": sorted(vpc.get("Subnets") or []),
        "VpcConfig.SecurityGroupIds": sorted(vpc.get("SecurityGroupIds") or []),
        "EnableInterContainerTrafficEncryption": bool(request.get("EnableInterContainerTrafficEncryption")),
        "EnableNetworkIsolation": bool(request.get("EnableNetworkIsolation")),
    }


def warm_pool_mismatches(pool_request: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """The attributes in which `request` differs from the request that created a pool (empty: it may reuse it)."""
    pool, wanted = warm_pool_attributes(pool_request), warm_pool_attributes(request)
    return [name for name in WARM_POOL_MATCH if pool[name] != wanted[name]]


def pool_expiry(available_since: dt.datetime, keep_alive: int) -> dt.datetime:
    # Keeping a pool only waits for the clock, so the time knob shortens it (time_scale.py).
    return available_since + dt.timedelta(seconds=TIME_SCALE.seconds(keep_alive))


class TrainingCapacity:
    """The account's instances as the quotas see them, over the executor's jobs (the executor's lock held).

    `remove_containers` is called when a pool ends other than by reuse: its instances, and the warm-pool cache
    on them, are gone."""

    def __init__(
        self,
        jobs: dict[str, TrainingJob],
        quotas: EmbeddedQuotas | None,
        remove_containers: Callable[[TrainingJob], None],
    ) -> None:
        self._jobs = jobs
        self.quotas = quotas
        self._remove_containers = remove_containers

    def quota(self, instance_type: str, kind: str) -> int | None:
        if self.quotas is None:
            return None
        configured = self.quotas.instances.get(instance_type)
        return int(getattr(configured, kind)) if configured else 0

    def instances_held(self, instance_type: str, *, spot: bool, exclude: TrainingJob | None = None) -> tuple[int, int]:
        """(instances of running jobs, instances retained in Available/InUse warm pools) of one type.

        Spot jobs count against the spot quota only; warm pools (never spot) against the on-demand one. A job
        running on a reused pool is counted through that pool, not twice."""
        running = retained = 0
        for other in self._jobs.values():
            if other is exclude or other.instance_type != instance_type or other.spot != spot:
                continue
            if other.status in ("InProgress", "Stopping") and other.reuses is None:
                running += other.instance_count
            if other.warm_pool and other.warm_pool.status in ("Available", "InUse"):
                retained += other.instance_count
        return running, retained

    def check_training_quota(self, job: TrainingJob, reusable: TrainingJob | None) -> None:
        kind = "spot_training_job_usage" if job.spot else "training_job_usage"
        limit = self.quota(job.instance_type, kind)
        if limit is None:
            return
        # A reused pool's instances become this job's: not counted as retained and again as requested.
        running, retained = self.instances_held(job.instance_type, spot=job.spot, exclude=reusable)
        used = running + retained  # warm-pool instances count against the training quota, as on AWS
        if used + job.instance_count > limit:
            raise AwsError(
                "ResourceLimitExceeded",
                f"The account-level service limit '{quota_name(job.instance_type, kind)}' is {limit} Instances, "
                f"with current utilization of {used} Instances and a request delta of {job.instance_count} Instances. "
                "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
                "available, contact AWS support to request an increase for this quota.",
            )

    def reusable_pool(self, job: TrainingJob) -> TrainingJob | None:
        if job.keep_alive <= 0:
            return None
        for other in self._jobs.values():
            pool = other.warm_pool
            if pool and pool.status == "Available" and not warm_pool_mismatches(other.request, job.request):
                return other
        return None

    def take_over_pool(self, job: TrainingJob, previous: TrainingJob) -> None:
        self.end_pool(previous, "Reused")
        assert previous.warm_pool is not None
        previous.warm_pool.reused_by = job.name
        job.reuses = previous.name
        job.container = previous.container  # the pool's containers persist, and what was installed in them
        job.warm_pool = WarmPool(status="InUse")

    def end_pool(self, job: TrainingJob, status: str) -> None:
        pool = job.warm_pool
        assert pool is not None and pool.available_since is not None
        end = min(utcnow(), pool.expires_at or utcnow())
        pool.retained_seconds = max(0.0, (end - pool.available_since).total_seconds())
        pool.status = status
        job.last_modified = utcnow()
        if status != "Reused":
            self._remove_containers(job)  # the instances go, and the warm-pool cache with them

    def offer_warm_pool(self, job: TrainingJob) -> None:
        """After a successful run: keep the instances if asked and the warm-pool quota has headroom."""
        if job.keep_alive <= 0:
            job.warm_pool = None
            return
        limit = self.quota(job.instance_type, "training_warm_pool_usage")
        _, retained = self.instances_held(job.instance_type, spot=False, exclude=job)
        if limit is not None and retained + job.instance_count > limit:
            # As on AWS: without warm-pool quota the job simply ran cold and keeps nothing.
            job.warm_pool = None
            return
        now = utcnow()
        job.warm_pool = WarmPool(status="Available", available_since=now, expires_at=pool_expiry(now, job.keep_alive))

    def expire_due_pools(self) -> None:
        """End every Available pool whose keep-alive has run out."""
        now = utcnow()
        for job in self._jobs.values():
            pool = job.warm_pool
            if pool and pool.status == "Available" and pool.expires_at and pool.expires_at <= now:
                self.end_pool(job, "Terminated")
