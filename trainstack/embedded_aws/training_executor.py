"""A local SageMaker training service: what moto's instant "Completed" stands in for.

Owns the training jobs' state and runs each job for real, in background threads, as a client of the
embedded AWS (S3 for data, code, checkpoints and artifacts; CloudWatch Logs for logs). It knows nothing
of HTTP: `sagemaker_training_api.py` maps requests onto the public methods here.

One job = one process per instance running the `sagemaker-training` toolkit's `train`, each with its own
`/opt/ml`-style folder (`SAGEMAKER_BASE_DIR`), hosts `algo-1..N`, MASTER_ADDR 127.0.0.1 and a free
MASTER_PORT. No container: the image URI is recorded only and the code runs in this Python environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from botocore.config import Config
from botocore.exceptions import ClientError

from trainstack.config import MAX_KEEP_ALIVE_SECONDS, EmbeddedQuotas
from trainstack.toolkit_host import (
    free_port,
    host_environment,
    host_name,
    launch_host,
    stop_hosts,
    write_host_config,
)

from .assumed_role_credentials import SAGEMAKER, Assumer, RoleCredentials, assume_role, role_client
from .capacity_errors import CAPACITY_ERROR, CapacityErrors
from .job_container import JobContainer
from .json_protocol import AwsError
from .sagemaker_quotas import quota_name
from .sagemaker_request_rules import OPT_ML, TENSORBOARD_DEFAULT_LOCAL_PATH, validate_create_training_job
from .time_scale import TIME_SCALE

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker sends SIGTERM and waits before SIGKILL; 120 s on AWS, shorter here so tests stay quick.
_STOP_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.2
_CHECKPOINT_SYNC_SECONDS = 5.0
_FAILURE_REASON_LIMIT = 1024
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

# SageMaker assumes a job's role with this session name (CloudTrail shows assumed-role/<role>/SageMaker).
JOB_SESSION_NAME = "SageMaker"

_STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Stopping": "Stopping the training job",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded the maximum allowed runtime (MaxRuntimeInSeconds)",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pool_expiry(available_since: dt.datetime, keep_alive: int) -> dt.datetime:
    # Keeping a pool only waits for the clock, so the time knob shortens it (time_scale.py).
    return available_since + dt.timedelta(seconds=TIME_SCALE.seconds(keep_alive))


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise AwsError("ValidationException", f"'{uri}' is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _decode_hyperparameter(value: str) -> str:
    # The SDK JSON-encodes every value ("\"s3://...\""); a raw value is taken as is.
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


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


class _CapacityLost(Exception):
    """The job's instances were lost (the capacity-error test switch); the message is its FailureReason."""


@dataclass
class WarmPool:
    status: str  # Available | InUse | Reused | Terminated
    available_since: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    retained_seconds: float = 0.0
    reused_by: str | None = None


@dataclass
class TrainingJob:
    request: dict[str, Any]
    arn: str
    creation_time: dt.datetime = field(default_factory=utcnow)
    status: str = "InProgress"
    secondary_status: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: dt.datetime = field(default_factory=utcnow)
    training_start: dt.datetime | None = None
    training_end: dt.datetime | None = None
    failure_reason: str | None = None
    model_artifact: str | None = None
    warm_pool: WarmPool | None = None
    reuses: str | None = None  # the job whose warm pool this one took over
    container: str = ""  # the pool's containers (job_container.py): the first job's name, kept by reusers
    stop_requested: threading.Event = field(default_factory=threading.Event)
    log_streams: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.request["TrainingJobName"])

    @property
    def instance_type(self) -> str:
        return str(self.request["ResourceConfig"]["InstanceType"])

    @property
    def instance_count(self) -> int:
        return int(self.request["ResourceConfig"]["InstanceCount"])

    @property
    def spot(self) -> bool:
        return bool(self.request.get("EnableManagedSpotTraining"))

    @property
    def keep_alive(self) -> int:
        return int(self.request["ResourceConfig"].get("KeepAlivePeriodInSeconds", 0))


class TrainingExecutor:
    """Training jobs' state and their runs. Thread-safe: the server calls it from request threads."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        account: str,
        work_dir: Path,
        quotas: EmbeddedQuotas | None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self.work_dir = work_dir
        self.quotas = quotas
        self._jobs: dict[str, TrainingJob] = {}
        self.capacity_errors = CapacityErrors()  # the test switch (capacity_errors.py)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reaper = threading.Thread(target=self._expire_warm_pools, name="warm-pool-reaper", daemon=True)
        self._reaper.start()

    # ----------------------------------------------------------------- API operations

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        request = json.loads(json.dumps(request))  # private copy: the caller's dict is not ours to keep
        # SageMaker's documented defaults, applied before validation so limits see the effective values.
        request.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", 86400)
        request.setdefault("HyperParameters", {})
        validate_create_training_job(request, self.quotas.longest_run_time_seconds if self.quotas else None)
        name = request["TrainingJobName"]
        with self._lock:
            if name in self._jobs:
                raise AwsError(
                    "ResourceInUse",
                    f"Training job names must be unique within an AWS account and region, "
                    f"and a training job with this name already exists ({self._arn(name)})",
                )
            job = TrainingJob(request=request, arn=self._arn(name), container=name)
            reusable = self._reusable_pool(job)
            self._check_training_quota(job, reusable)
            if reusable is not None:
                self._take_over_pool(job, reusable)
            self._transition(job, "Starting")
            self._jobs[name] = job
        thread = threading.Thread(target=self._run, args=(job,), name=f"training-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"TrainingJobArn": job.arn}

    def seed_retained_pool(self, request: dict[str, Any]) -> str:
        """A job that already ran and kept its pool (Completed, pool Available), without running anything.

        For tests that need many retained pools (paging, counting): running 150 real jobs would take minutes.
        The request is validated as CreateTrainingJob validates it and must ask for a keep-alive; quotas are
        checked as SageMaker checks them when a pool is kept, so the seeded state is one AWS can reach."""
        request = json.loads(json.dumps(request))
        request.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", 86400)
        validate_create_training_job(request, self.quotas.longest_run_time_seconds if self.quotas else None)
        with self._lock:
            name = request["TrainingJobName"]
            if name in self._jobs:
                raise AwsError("ResourceInUse", f"a training job named {name} already exists")
            job = TrainingJob(request=request, arn=self._arn(name))
            if job.keep_alive <= 0:
                raise AwsError("ValidationException", "a seeded pool needs ResourceConfig.KeepAlivePeriodInSeconds")
            self._check_training_quota(job, None)
            self._offer_warm_pool(job)
            if job.warm_pool is None:
                raise AwsError("ResourceLimitExceeded", f"the warm-pool quota of {job.instance_type} is used up")
            now = utcnow()
            job.status = "Completed"
            job.training_start = job.training_end = now
            self._transition(job, "Completed")
            self._jobs[name] = job
            return job.arn

    def describe(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._get(name))

    def list(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
            if request.get("NameContains"):
                jobs = [job for job in jobs if request["NameContains"] in job.name]
            if request.get("StatusEquals"):
                jobs = [job for job in jobs if job.status == request["StatusEquals"]]
            if request.get("WarmPoolStatusEquals"):
                wanted = request["WarmPoolStatusEquals"]
                jobs = [job for job in jobs if job.warm_pool and job.warm_pool.status == wanted]
            for key, keep in (
                ("CreationTimeAfter", lambda j, t: j.creation_time > t),
                ("CreationTimeBefore", lambda j, t: j.creation_time < t),
            ):
                if request.get(key) is not None:
                    limit = dt.datetime.fromtimestamp(float(request[key]), dt.UTC)
                    jobs = [job for job in jobs if keep(job, limit)]
            sort_by = request.get("SortBy", "CreationTime")
            sort_key = {"Name": lambda j: j.name, "Status": lambda j: j.status}.get(sort_by, lambda j: j.creation_time)
            jobs.sort(key=sort_key, reverse=request.get("SortOrder", "Ascending") == "Descending")
            start = int(request.get("NextToken") or 0)
            size = int(request.get("MaxResults") or 10)
            page = jobs[start : start + size]
            answer: dict[str, Any] = {"TrainingJobSummaries": [self._summary(job) for job in page]}
            if start + size < len(jobs):
                answer["NextToken"] = str(start + size)
            return answer

    def stop(self, name: str) -> dict[str, Any]:
        with self._lock:
            job = self._get(name)
            if job.status != "InProgress":
                raise AwsError(
                    "ValidationException",
                    f"The training job {name} is {job.status}; only InProgress jobs can be stopped",
                )
            job.status = "Stopping"
            self._transition(job, "Stopping")
            job.stop_requested.set()
        return {}

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._get(request["TrainingJobName"])
            resource = request.get("ResourceConfig") or {}
            if "KeepAlivePeriodInSeconds" not in resource:
                raise AwsError(
                    "ValidationException",
                    "Only ResourceConfig.KeepAlivePeriodInSeconds can be updated by the embedded AWS",
                )
            keep_alive = int(resource["KeepAlivePeriodInSeconds"])
            if not 0 <= keep_alive <= MAX_KEEP_ALIVE_SECONDS:
                raise AwsError("ValidationException", f"KeepAlivePeriodInSeconds must be 0..{MAX_KEEP_ALIVE_SECONDS}")
            pool = job.warm_pool
            if job.status in TERMINAL and (pool is None or pool.status != "Available"):
                raise AwsError(
                    "ValidationException", f"The training job {job.name} has no available warm pool to update"
                )
            job.request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = keep_alive
            if pool is not None and pool.status == "Available":
                if keep_alive == 0:
                    self._end_pool(job, "Terminated")
                else:
                    assert pool.available_since is not None
                    pool.expires_at = _pool_expiry(pool.available_since, keep_alive)
            job.last_modified = utcnow()
            return {"TrainingJobArn": job.arn}

    def close(self) -> None:
        """Stop every running job and wait for the job threads (the server is going away)."""
        self._closed.set()
        with self._lock:
            for job in self._jobs.values():
                job.stop_requested.set()
        for thread in self._threads:
            thread.join(timeout=_STOP_GRACE_SECONDS + 5)

    # ----------------------------------------------------------------- state helpers (hold the lock)

    def _arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name.lower()}"

    def tags(self, arn: str) -> dict[str, Any]:
        """ListTags for a training job's ARN: the tags it was created with."""
        with self._lock:
            job = next((j for j in self._jobs.values() if j.arn == arn), None)
            if job is None:
                raise AwsError("ValidationException", f"Requested resource not found: {arn}")
            return {"Tags": list(job.request.get("Tags", []))}

    def _get(self, name: str) -> TrainingJob:
        job = self._jobs.get(name)
        if job is None:
            raise AwsError("ValidationException", f"Requested resource not found: training job {name}")
        return job

    def _transition(self, job: TrainingJob, secondary: str) -> None:
        now = utcnow()
        if job.transitions and "EndTime" not in job.transitions[-1]:
            job.transitions[-1]["EndTime"] = now
        job.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": _STATUS_MESSAGES[secondary]})
        if secondary in TERMINAL or secondary == "MaxRuntimeExceeded":
            job.transitions[-1]["EndTime"] = now
        job.secondary_status = secondary
        job.last_modified = now

    def _quota(self, instance_type: str, kind: str) -> int | None:
        if self.quotas is None:
            return None
        configured = self.quotas.instances.get(instance_type)
        return int(getattr(configured, kind)) if configured else 0

    def _instances_held(self, instance_type: str, *, spot: bool, exclude: TrainingJob | None = None) -> tuple[int, int]:
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

    def _check_training_quota(self, job: TrainingJob, reusable: TrainingJob | None) -> None:
        kind = "spot_training_job_usage" if job.spot else "training_job_usage"
        limit = self._quota(job.instance_type, kind)
        if limit is None:
            return
        # A reused pool's instances become this job's: not counted as retained and again as requested.
        running, retained = self._instances_held(job.instance_type, spot=job.spot, exclude=reusable)
        used = running + retained  # warm-pool instances count against the training quota, as on AWS
        if used + job.instance_count > limit:
            raise AwsError(
                "ResourceLimitExceeded",
                f"The account-level service limit '{quota_name(job.instance_type, kind)}' is {limit} Instances, "
                f"with current utilization of {used} Instances and a request delta of {job.instance_count} Instances. "
                "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
                "available, contact AWS support to request an increase for this quota.",
            )

    def _reusable_pool(self, job: TrainingJob) -> TrainingJob | None:
        if job.keep_alive <= 0:
            return None
        for other in self._jobs.values():
            pool = other.warm_pool
            if pool and pool.status == "Available" and not warm_pool_mismatches(other.request, job.request):
                return other
        return None

    def _take_over_pool(self, job: TrainingJob, previous: TrainingJob) -> None:
        self._end_pool(previous, "Reused")
        assert previous.warm_pool is not None
        previous.warm_pool.reused_by = job.name
        job.reuses = previous.name
        job.container = previous.container  # the pool's containers persist, and what was installed in them
        job.warm_pool = WarmPool(status="InUse")

    def _end_pool(self, job: TrainingJob, status: str) -> None:
        pool = job.warm_pool
        assert pool is not None and pool.available_since is not None
        end = min(utcnow(), pool.expires_at or utcnow())
        pool.retained_seconds = max(0.0, (end - pool.available_since).total_seconds())
        pool.status = status
        job.last_modified = utcnow()
        if status != "Reused":
            self._container(job).remove()  # the instances go, and the warm-pool cache with them

    def _offer_warm_pool(self, job: TrainingJob) -> None:
        """After a successful run: keep the instances if asked and the warm-pool quota has headroom."""
        if job.keep_alive <= 0:
            job.warm_pool = None
            return
        limit = self._quota(job.instance_type, "training_warm_pool_usage")
        _, retained = self._instances_held(job.instance_type, spot=False, exclude=job)
        if limit is not None and retained + job.instance_count > limit:
            # As on AWS: without warm-pool quota the job simply ran cold and keeps nothing.
            job.warm_pool = None
            return
        now = utcnow()
        job.warm_pool = WarmPool(status="Available", available_since=now, expires_at=_pool_expiry(now, job.keep_alive))

    def _expire_warm_pools(self) -> None:
        while not self._closed.wait(_POLL_SECONDS):
            with self._lock:
                now = utcnow()
                for job in self._jobs.values():
                    pool = job.warm_pool
                    if pool and pool.status == "Available" and pool.expires_at and pool.expires_at <= now:
                        self._end_pool(job, "Terminated")

    def _render(self, job: TrainingJob) -> dict[str, Any]:
        request = job.request
        answer: dict[str, Any] = {
            key: request[key]
            for key in (
                "TrainingJobName",
                "HyperParameters",
                "AlgorithmSpecification",
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "VpcConfig",
                "StoppingCondition",
                "EnableNetworkIsolation",
                "EnableInterContainerTrafficEncryption",
                "EnableManagedSpotTraining",
                "CheckpointConfig",
                "DebugHookConfig",
                "ProfilerConfig",
                "Environment",
                "RetryStrategy",
                "ExperimentConfig",
                "TensorBoardOutputConfig",
            )
            if key in request
        }
        answer.update(
            TrainingJobArn=job.arn,
            TrainingJobStatus=job.status,
            SecondaryStatus=job.secondary_status,
            CreationTime=job.creation_time,
            LastModifiedTime=job.last_modified,
            SecondaryStatusTransitions=[dict(item) for item in job.transitions],
        )
        answer.setdefault("EnableNetworkIsolation", False)
        answer.setdefault("EnableInterContainerTrafficEncryption", False)
        answer.setdefault("EnableManagedSpotTraining", False)
        if job.failure_reason:
            answer["FailureReason"] = job.failure_reason
        if job.model_artifact:
            answer["ModelArtifacts"] = {"S3ModelArtifacts": job.model_artifact}
        if job.training_start:
            answer["TrainingStartTime"] = job.training_start
        if job.training_end:
            answer["TrainingEndTime"] = job.training_end
            assert job.training_start is not None
            seconds = max(1, round((job.training_end - job.training_start).total_seconds()))
            answer["TrainingTimeInSeconds"] = seconds
            # Per instance, as SageMaker reports it: the bill is BillableTimeInSeconds * InstanceCount.
            answer["BillableTimeInSeconds"] = seconds
        if job.warm_pool:
            pool = job.warm_pool
            status: dict[str, Any] = {"Status": pool.status}
            if pool.status == "Available" and pool.available_since:
                retained = (utcnow() - pool.available_since).total_seconds()
            else:
                retained = pool.retained_seconds
            if pool.available_since:
                # Per instance too (DescribeTrainingJob: "multiply ... by the number of instances").
                status["ResourceRetainedBillableTimeInSeconds"] = int(retained)
            if pool.reused_by:
                status["ReusedByJob"] = pool.reused_by
            answer["WarmPoolStatus"] = status
        return answer

    def _summary(self, job: TrainingJob) -> dict[str, Any]:
        described = self._render(job)
        keys = (
            "TrainingJobName",
            "TrainingJobArn",
            "CreationTime",
            "TrainingEndTime",
            "LastModifiedTime",
            "TrainingJobStatus",
            "SecondaryStatus",
            "WarmPoolStatus",
        )
        return {key: described[key] for key in keys if key in described}

    # ----------------------------------------------------------------- the run (job thread)

    def _client(self, job: TrainingJob, service: str) -> Any:
        # SageMaker works as the job's RoleArn: every download, upload and log line is checked against it.
        return role_client(
            self.endpoint_url,
            self.region,
            service,
            job.request["RoleArn"],
            JOB_SESSION_NAME,
            assumer=Assumer(SAGEMAKER, job.arn),
            config=Config(retries={"max_attempts": 3}),
        )

    def _set(self, job: TrainingJob, secondary: str, status: str | None = None) -> None:
        with self._lock:
            if status:
                job.status = status
            self._transition(job, secondary)

    def _container(self, job: TrainingJob) -> JobContainer:
        return JobContainer(self.work_dir / "_containers" / job.container)

    def _run(self, job: TrainingJob) -> None:
        job_dir = self.work_dir / job.name
        outcome: str
        launched = False
        try:
            credentials = assume_role(
                self.endpoint_url,
                self.region,
                job.request["RoleArn"],
                JOB_SESSION_NAME,
                assumer=Assumer(SAGEMAKER, job.arn),
            )
            run = _JobRun(
                job,
                job_dir,
                self._client(job, "s3"),
                self._client(job, "logs"),
                self.region,
                self.endpoint_url,
                self._container(job),
            )
            run.credentials = credentials
        except Exception as error:
            with self._lock:
                job.failure_reason = f"ClientError: could not assume the job's RoleArn: {error}"[:_FAILURE_REASON_LIMIT]
                job.training_end = utcnow()
                job.status = "Failed"
                self._transition(job, "Failed")
            return
        try:
            self._set(job, "Downloading")
            with self._lock:
                job.training_start = utcnow()
            run.prepare()
            if job.stop_requested.is_set():
                outcome = "Stopped"
            else:
                self._set(job, "Training")
                launched = True
                outcome = run.train()
            if outcome == "Completed" and self.capacity_errors.take(job.instance_type):
                # Checkpoints are synced (train() ends with a sync); the instances are gone, no model is uploaded.
                raise _CapacityLost(CAPACITY_ERROR)
            if outcome in ("Completed", "Stopped", "MaxRuntimeExceeded"):
                self._set(job, "Uploading")
                job.model_artifact = run.upload_outputs()
        except _CapacityLost as error:
            outcome = "Failed"
            job.failure_reason = str(error)
        except AwsError as error:
            outcome = "Failed"
            job.failure_reason = f"ClientError: {error.message}"[:_FAILURE_REASON_LIMIT]
        except ClientError as error:
            # An AWS call of the job's role was refused (AccessDenied on the data, the output key ...).
            outcome = "Failed"
            job.failure_reason = f"ClientError: {error}"[:_FAILURE_REASON_LIMIT]
        except Exception as error:
            outcome = "Failed"
            job.failure_reason = f"InternalServerError: {type(error).__name__}: {error}"[:_FAILURE_REASON_LIMIT]
        else:
            if outcome == "Failed":
                job.failure_reason = run.failure_reason()
        finally:
            run.close()
        with self._lock:
            job.training_end = utcnow()
            job.log_streams = run.log_streams
            if outcome == "MaxRuntimeExceeded":
                self._transition(job, "MaxRuntimeExceeded")
                job.status = "Stopped"
            else:
                job.status = outcome
                self._transition(job, outcome)
            # SageMaker keeps a pool for a completed job and for one stopped after its cluster launched ("Warm
            # pool creation", train-warm-pools.html): here, one stopped once it was Training.
            if outcome == "Completed" or (outcome == "Stopped" and launched):
                self._offer_warm_pool(job)
            else:
                job.warm_pool = None
            if job.warm_pool is None:
                self._container(job).remove()


class _JobRun:
    """The on-disk, per-run part of one job: host folders, processes, logs, uploads."""

    def __init__(
        self,
        job: TrainingJob,
        job_dir: Path,
        s3: Any,
        logs: Any,
        region: str,
        endpoint_url: str,
        container: JobContainer,
    ) -> None:
        self.job = job
        self.container = container
        self.job_dir = job_dir
        self.s3 = s3
        self.logs = logs
        self.region = region
        self.endpoint_url = endpoint_url
        self.hosts = [host_name(index) for index in range(job.instance_count)]
        self.credentials: RoleCredentials | None = None
        self.log_streams: list[str] = []
        self._checkpoint_state: dict[Path, tuple[float, int]] = {}
        self._checkpoint_keys: dict[Path, str] = {}
        self._tensorboard_state: dict[Path, tuple[float, int]] = {}
        self._log_threads: list[threading.Thread] = []
        self._exit_codes: dict[str, int] = {}

    def host_dir(self, host: str) -> Path:
        return self.job_dir / host

    # Downloading ----------------------------------------------------------------------

    def prepare(self) -> None:
        if self.job_dir.exists():
            shutil.rmtree(self.job_dir)
        request = self.job.request
        cache = self.job_dir / "_downloads"
        channels: dict[str, dict[str, Any]] = {}
        for channel in request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            self._download_prefix(source["S3Uri"], cache / "channels" / name)
            channels[name] = {
                "TrainingInputMode": channel.get(
                    "InputMode", request["AlgorithmSpecification"].get("TrainingInputMode", "File")
                ),
                "S3DistributionType": source.get("S3DistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if "ContentType" in channel:
                channels[name]["ContentType"] = channel["ContentType"]
        code_dir = self._download_code(request.get("HyperParameters", {}), cache / "code")
        checkpoint = request.get("CheckpointConfig")
        for host in self.hosts:
            base = self.host_dir(host)
            extra_config: dict[str, object] = {"trainingjobconfig.json": request}
            if checkpoint:
                extra_config["checkpointconfig.json"] = {
                    "LocalPath": str(base / "checkpoints"),
                    "S3Uri": checkpoint["S3Uri"],
                }
            write_host_config(
                base,
                current_host=host,
                hosts=self.hosts,
                hyperparameters=request.get("HyperParameters", {}),
                channels={name: cache / "channels" / name for name in channels},
                instance_type=self.job.instance_type,
                # One download per job, hard-linked into each host: no N copies of the data on one disk.
                hardlink_channels=True,
                input_data_config=channels,
                extra_config=extra_config,
                # Ours, so the toolkit skips downloading sagemaker_submit_directory from S3 once per host.
                code_dir=code_dir,
            )
            if checkpoint:
                # SageMaker restores CheckpointConfig.S3Uri into LocalPath before the code starts.
                self._download_prefix(checkpoint["S3Uri"], base / "checkpoints")

    def _download_prefix(self, uri: str, target: Path) -> None:
        bucket, prefix = _split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(destination))

    def _download_code(self, hyperparameters: dict[str, str], target: Path) -> Path | None:
        uri = _decode_hyperparameter(hyperparameters.get("sagemaker_submit_directory", ""))
        if not uri.startswith("s3://"):
            return None
        bucket, key = _split_s3(uri)
        target.mkdir(parents=True)
        archive = target.parent / "sourcedir.tar.gz"
        try:
            self.s3.download_file(bucket, key, str(archive))
        except Exception as error:
            raise AwsError(
                "ValidationException", f"Could not download sagemaker_submit_directory {uri}: {error}"
            ) from error
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")
        return target

    # Training -------------------------------------------------------------------------

    def _host_env(self, host: str, master_port: int) -> dict[str, str]:
        env = host_environment(
            self.host_dir(host),
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(master_port),
                "TRAINING_JOB_NAME": self.job.name,
                "TRAINING_JOB_ARN": self.job.arn,
                # The job talks to the embedded AWS, never to whatever account the caller is signed in to.
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # The job's code calls AWS as its RoleArn, as on SageMaker (the container's role credentials).
                **(self.credentials.environment() if self.credentials else {}),
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
            },
            job_environment=self.job.request.get("Environment", {}),
            # The caller's AWS settings (a profile, a session token, a real endpoint) must not leak into the job.
            scrub_prefixes=("AWS_",),
        )
        return self.container.environment(host, env, warm_pool=self.job.keep_alive > 0)

    def train(self) -> str:
        """Run one toolkit process per host; return Completed, Failed, Stopped or MaxRuntimeExceeded."""
        master_port = free_port()
        epoch = int(time.time())
        processes: dict[str, subprocess.Popen[bytes]] = {}
        for host in self.hosts:
            self.container.prepare(host)
            # Piped, not to a file: _ship_logs timestamps each line as it arrives for CloudWatch Logs.
            process = launch_host(
                self.host_dir(host),
                self._host_env(host, master_port),
                stdout=subprocess.PIPE,
                python=self.container.python(host),
            )
            processes[host] = process
            stream = f"{self.job.name}/{host}-{epoch}"
            self.log_streams.append(stream)
            assert process.stdout is not None
            thread = threading.Thread(target=self._ship_logs, args=(stream, process.stdout, host), daemon=True)
            thread.start()
            self._log_threads.append(thread)
        max_runtime = self.job.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        deadline = time.monotonic() + max_runtime
        next_sync = time.monotonic() + _CHECKPOINT_SYNC_SECONDS
        outcome: str | None = None
        while any(process.poll() is None for process in processes.values()):
            if self.job.stop_requested.is_set():
                outcome = "Stopped"
            elif time.monotonic() > deadline:
                outcome = "MaxRuntimeExceeded"
            elif any(process.poll() not in (None, 0) for process in processes.values()):
                # One host failed: SageMaker fails the job and tears the others down.
                outcome = "Failed"
            if outcome:
                stop_hosts(list(processes.values()), _STOP_GRACE_SECONDS)
                break
            if time.monotonic() > next_sync:
                self.sync_checkpoints()
                self.sync_tensorboard()
                next_sync = time.monotonic() + _CHECKPOINT_SYNC_SECONDS
            time.sleep(_POLL_SECONDS)
        self._exit_codes = {host: process.wait() for host, process in processes.items()}
        for thread in self._log_threads:
            thread.join(timeout=10)
        self.sync_checkpoints()
        self.sync_tensorboard()
        if outcome:
            return outcome
        return "Completed" if all(code == 0 for code in self._exit_codes.values()) else "Failed"

    def _ship_logs(self, stream: str, pipe: IO[bytes], host: str) -> None:
        try:
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        except self.logs.exceptions.ResourceNotFoundException:
            # Only a missing group is created, as the job's role: the platform creates it at deploy with its key
            # and retention (trainstack/platform/constructs/training_log_group.py), so its execution role holds no
            # CreateLogGroup.
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=LOG_GROUP)
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        local = (self.host_dir(host) / "output" / "job.log").open("ab")
        batch: list[dict[str, Any]] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal batch, last_flush
            if batch:
                self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=batch)
            batch, last_flush = [], time.monotonic()

        # Line by line, timestamped on arrival: the log is the job's clock for "first line"/"last line".
        for raw in iter(pipe.readline, b""):
            local.write(raw)
            local.flush()
            # CloudWatch Logs rejects empty messages; keep blank lines visible as a single space.
            message = raw.decode(errors="replace").rstrip("\n") or " "
            batch.append({"timestamp": int(time.time() * 1000), "message": message})
            if len(batch) >= 200 or time.monotonic() - last_flush > 1.0:
                flush()
        flush()
        local.close()

    def sync_checkpoints(self) -> None:
        checkpoint = self.job.request.get("CheckpointConfig")
        if not checkpoint:
            return
        bucket, prefix = _split_s3(checkpoint["S3Uri"])
        present: set[str] = set()
        for host in self.hosts:
            root = self.host_dir(host) / "checkpoints"
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                stat = path.stat()
                signature = (stat.st_mtime, stat.st_size)
                key = f"{prefix.rstrip('/')}/{path.relative_to(root).as_posix()}".lstrip("/")
                present.add(key)
                if self._checkpoint_state.get(path) == signature:
                    continue
                self.s3.upload_file(str(path), bucket, key)
                self._checkpoint_state[path] = signature
                self._checkpoint_keys[path] = key
        # "If a checkpoint is deleted in the SageMaker AI container, it will also be deleted in the S3 folder"
        # (model-checkpoints.html): a host pruning old checkpoints prunes the shared prefix.
        for path in [path for path in self._checkpoint_keys if not path.exists()]:
            key = self._checkpoint_keys.pop(path)
            self._checkpoint_state.pop(path, None)
            if key not in present:
                self.s3.delete_object(Bucket=bucket, Key=key)

    def sync_tensorboard(self) -> None:
        """TensorBoardOutputConfig: SageMaker uploads LocalPath to S3OutputPath while the job runs, so a
        TensorBoard pointed at S3 follows the run; here on every checkpoint sync and once at the end. Files are
        only added or replaced (event files grow), never deleted. Encrypted as the job's other outputs are."""
        config = self.job.request.get("TensorBoardOutputConfig")
        if not config:
            return
        bucket, prefix = _split_s3(config["S3OutputPath"])
        kms_key = self.job.request["OutputDataConfig"].get("KmsKeyId")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else None
        local = PurePosixPath(config.get("LocalPath") or TENSORBOARD_DEFAULT_LOCAL_PATH).relative_to(OPT_ML)
        for host in self.hosts:
            root = self.host_dir(host) / local
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                stat = path.stat()
                signature = (stat.st_mtime, stat.st_size)
                if self._tensorboard_state.get(path) == signature:
                    continue
                key = f"{prefix.rstrip('/')}/{path.relative_to(root).as_posix()}".lstrip("/")
                self.s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
                self._tensorboard_state[path] = signature

    def failure_reason(self) -> str:
        for host in self.hosts:
            failure = self.host_dir(host) / "output" / "failure"
            if failure.exists():
                text = failure.read_text(errors="replace").strip()
                return f"AlgorithmError: {text}"[:_FAILURE_REASON_LIMIT]
        failed = {host: code for host, code in self._exit_codes.items() if code != 0}
        return f"AlgorithmError: training exited with codes {failed} and wrote no failure file"[:_FAILURE_REASON_LIMIT]

    # Uploading ------------------------------------------------------------------------

    def upload_outputs(self) -> str:
        """model.tar.gz (or the model folder with CompressionType NONE) and output.tar.gz from algo-1."""
        output = self.job.request["OutputDataConfig"]
        bucket, prefix = _split_s3(output["S3OutputPath"])
        # SageMaker encrypts the outputs with OutputDataConfig.KmsKeyId (SSE-KMS), as the job's role.
        extra = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]} if output.get("KmsKeyId") else None
        )
        base_key = f"{prefix.rstrip('/')}/{self.job.name}/output".lstrip("/")
        master = self.host_dir(self.hosts[0])
        if output.get("CompressionType") == "NONE":
            for path in sorted(p for p in (master / "model").rglob("*") if p.is_file()):
                self.s3.upload_file(
                    str(path),
                    bucket,
                    f"{base_key}/model/{path.relative_to(master / 'model').as_posix()}",
                    ExtraArgs=extra,
                )
            artifact = f"s3://{bucket}/{base_key}/model/"
        else:
            archive = self.job_dir / "model.tar.gz"
            _tar(master / "model", archive)
            self.s3.upload_file(str(archive), bucket, f"{base_key}/model.tar.gz", ExtraArgs=extra)
            artifact = f"s3://{bucket}/{base_key}/model.tar.gz"
        data_archive = self.job_dir / "output.tar.gz"
        _tar(master / "output" / "data", data_archive)
        self.s3.upload_file(str(data_archive), bucket, f"{base_key}/output.tar.gz", ExtraArgs=extra)
        return artifact

    def close(self) -> None:
        for thread in self._log_threads:
            thread.join(timeout=5)


def _tar(directory: Path, archive: Path) -> None:
    # Entries at the archive root, like SageMaker's model.tar.gz.
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
