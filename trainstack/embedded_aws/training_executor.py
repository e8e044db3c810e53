"""A local SageMaker training service: what moto's instant "Completed" stands in for.

The training-job operations' behaviour (create, describe, list and its paging, stop, update, tags) over the jobs'
state (`training_job_state.py`). Whether a job fits the quotas and which warm pool it takes is
`training_capacity.py`; the run itself, in a thread per job, is `training_job_runner.py`. It knows nothing of
HTTP: `sagemaker_training_api.py` parses the requests and calls the public methods here.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainstack.config import MAX_KEEP_ALIVE_SECONDS, EmbeddedQuotas

from .capacity_errors import CapacityErrors
from .json_protocol import AwsError
from .sagemaker_request_rules import validate_create_training_job
from .training_capacity import TrainingCapacity, pool_expiry
from .training_job_runner import POLL_SECONDS, STOP_GRACE_SECONDS, JobRunner, job_container
from .training_job_state import TERMINAL, TrainingJob, transition, utcnow

# What DescribeTrainingJob echoes of the CreateTrainingJob request.
_DESCRIBED_REQUEST_MEMBERS = (
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
_SUMMARY_MEMBERS = (
    "TrainingJobName",
    "TrainingJobArn",
    "CreationTime",
    "TrainingEndTime",
    "LastModifiedTime",
    "TrainingJobStatus",
    "SecondaryStatus",
    "WarmPoolStatus",
)


@dataclass(frozen=True)
class JobListQuery:
    """ListTrainingJobs' filters, order and page, as `sagemaker_training_api.py` parses them."""

    name_contains: str | None = None
    status: str | None = None
    warm_pool_status: str | None = None
    created_after: Any = None  # datetime
    created_before: Any = None  # datetime
    sort_by: str = "CreationTime"
    descending: bool = False
    start: int = 0
    size: int = 10


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
        self.jobs: dict[str, TrainingJob] = {}
        self.capacity_errors = CapacityErrors()  # the test switch (capacity_errors.py)
        self.lock = threading.RLock()
        self.capacity = TrainingCapacity(self.jobs, quotas, lambda job: job_container(work_dir, job).remove())
        self._runner = JobRunner(endpoint_url, region, work_dir, self.lock, self.capacity, self.capacity_errors)
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
        validate_create_training_job(request, self.longest_run_time())
        name = request["TrainingJobName"]
        with self.lock:
            if name in self.jobs:
                raise AwsError(
                    "ResourceInUse",
                    f"Training job names must be unique within an AWS account and region, "
                    f"and a training job with this name already exists ({self.job_arn(name)})",
                )
            job = TrainingJob(request=request, arn=self.job_arn(name), container=name)
            reusable = self.capacity.reusable_pool(job)
            self.capacity.check_training_quota(job, reusable)
            if reusable is not None:
                self.capacity.take_over_pool(job, reusable)
            transition(job, "Starting")
            self.jobs[name] = job
        thread = threading.Thread(target=self._runner.run, args=(job,), name=f"training-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"TrainingJobArn": job.arn}

    def describe(self, name: str) -> dict[str, Any]:
        with self.lock:
            return self._render(self._get(name))

    def list(self, query: JobListQuery) -> dict[str, Any]:
        with self.lock:
            jobs = list(self.jobs.values())
            if query.name_contains:
                jobs = [job for job in jobs if query.name_contains in job.name]
            if query.status:
                jobs = [job for job in jobs if job.status == query.status]
            if query.warm_pool_status:
                wanted = query.warm_pool_status
                jobs = [job for job in jobs if job.warm_pool and job.warm_pool.status == wanted]
            if query.created_after is not None:
                jobs = [job for job in jobs if job.creation_time > query.created_after]
            if query.created_before is not None:
                jobs = [job for job in jobs if job.creation_time < query.created_before]
            sort_key = {"Name": lambda j: j.name, "Status": lambda j: j.status}.get(
                query.sort_by, lambda j: j.creation_time
            )
            jobs.sort(key=sort_key, reverse=query.descending)
            start, size = query.start, query.size
            page = jobs[start : start + size]
            answer: dict[str, Any] = {"TrainingJobSummaries": [self._summary(job) for job in page]}
            if start + size < len(jobs):
                answer["NextToken"] = str(start + size)
            return answer

    def stop(self, name: str) -> dict[str, Any]:
        with self.lock:
            job = self._get(name)
            if job.status != "InProgress":
                raise AwsError(
                    "ValidationException",
                    f"The training job {name} is {job.status}; only InProgress jobs can be stopped",
                )
            job.status = "Stopping"
            transition(job, "Stopping")
            job.stop_requested.set()
        return {}

    def update(self, name: str, keep_alive: int | None) -> dict[str, Any]:
        """UpdateTrainingJob of ResourceConfig.KeepAlivePeriodInSeconds (None: the request has none), the one member
        the embedded AWS updates."""
        with self.lock:
            job = self._get(name)
            if keep_alive is None:
                raise AwsError(
                    "ValidationException",
                    "Only ResourceConfig.KeepAlivePeriodInSeconds can be updated by the embedded AWS",
                )
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
                    self.capacity.end_pool(job, "Terminated")
                else:
                    assert pool.available_since is not None
                    pool.expires_at = pool_expiry(pool.available_since, keep_alive)
            job.last_modified = utcnow()
            return {"TrainingJobArn": job.arn}

    def tags(self, arn: str) -> dict[str, Any]:
        """ListTags for a training job's ARN: the tags it was created with."""
        with self.lock:
            job = next((j for j in self.jobs.values() if j.arn == arn), None)
            if job is None:
                raise AwsError("ValidationException", f"Requested resource not found: {arn}")
            return {"Tags": list(job.request.get("Tags", []))}

    def close(self) -> None:
        """Stop every running job and wait for the job threads (the server is going away)."""
        self._closed.set()
        with self.lock:
            for job in self.jobs.values():
                job.stop_requested.set()
        for thread in self._threads:
            thread.join(timeout=STOP_GRACE_SECONDS + 5)

    # ----------------------------------------------------------------- state helpers

    def job_arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name.lower()}"

    def longest_run_time(self) -> int | None:
        """The account's MaxRuntimeInSeconds ceiling (a quota), None where no quotas are configured."""
        return self.quotas.longest_run_time_seconds if self.quotas else None

    def _get(self, name: str) -> TrainingJob:
        job = self.jobs.get(name)
        if job is None:
            raise AwsError("ValidationException", f"Requested resource not found: training job {name}")
        return job

    def _expire_warm_pools(self) -> None:
        while not self._closed.wait(POLL_SECONDS):
            with self.lock:
                self.capacity.expire_due_pools()

    def _render(self, job: TrainingJob) -> dict[str, Any]:
        request = job.request
        answer: dict[str, Any] = {key: request[key] for key in _DESCRIBED_REQUEST_MEMBERS if key in request}
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
        return {key: described[key] for key in _SUMMARY_MEMBERS if key in described}
