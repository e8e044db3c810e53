"""The job runner of the embedded SageMaker: one job's run, in its own thread, as a client of the embedded AWS
(S3 for data, code, checkpoints and artifacts; CloudWatch Logs for logs), as the job's RoleArn.

One job = one process per instance running the `sagemaker-training` toolkit's `train`, each with its own
`/opt/ml`-style folder (`SAGEMAKER_BASE_DIR`), hosts `algo-1..N`, MASTER_ADDR 127.0.0.1 and a free
MASTER_PORT. No container: the image URI is recorded only and the code runs in this Python environment
(`job_container.py` isolates what a container would).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import IO, Any

from botocore.config import Config
from botocore.exceptions import ClientError

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
from .sagemaker_request_rules import OPT_ML, TENSORBOARD_DEFAULT_LOCAL_PATH
from .training_capacity import TrainingCapacity
from .training_job_state import TrainingJob, transition, utcnow

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker sends SIGTERM and waits before SIGKILL; 120 s on AWS, shorter here so tests stay quick.
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2
_CHECKPOINT_SYNC_SECONDS = 5.0
_FAILURE_REASON_LIMIT = 1024

# SageMaker assumes a job's role with this session name (CloudTrail shows assumed-role/<role>/SageMaker).
JOB_SESSION_NAME = "SageMaker"


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


class _CapacityLost(Exception):
    """The job's instances were lost (the capacity-error test switch); the message is its FailureReason."""


def job_container(work_dir: Path, job: TrainingJob) -> JobContainer:
    """The containers of the job's warm pool (the first job's name, kept by the jobs that reuse the pool)."""
    return JobContainer(work_dir / "_containers" / job.container)


class JobRunner:
    """Runs jobs, each in the thread that calls `run`; job state changes under the executor's `lock`."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        work_dir: Path,
        lock: threading.RLock,
        capacity: TrainingCapacity,
        capacity_errors: CapacityErrors,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.work_dir = work_dir
        self._lock = lock
        self._capacity = capacity
        self.capacity_errors = capacity_errors

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
            transition(job, secondary)

    def _container(self, job: TrainingJob) -> JobContainer:
        return job_container(self.work_dir, job)

    def run(self, job: TrainingJob) -> None:
        """The job's thread: assume its role, download, train, upload, and end in a terminal status (keeping a
        warm pool where SageMaker would)."""
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
            run = JobRun(
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
                transition(job, "Failed")
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
                transition(job, "MaxRuntimeExceeded")
                job.status = "Stopped"
            else:
                job.status = outcome
                transition(job, outcome)
            # SageMaker keeps a pool for a completed job and for one stopped after its cluster launched ("Warm
            # pool creation", train-warm-pools.html): here, one stopped once it was Training.
            if outcome == "Completed" or (outcome == "Stopped" and launched):
                self._capacity.offer_warm_pool(job)
            else:
                job.warm_pool = None
            if job.warm_pool is None:
                self._container(job).remove()


class JobRun:
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
                stop_hosts(list(processes.values()), STOP_GRACE_SECONDS)
                break
            if time.monotonic() > next_sync:
                self.sync_checkpoints()
                self.sync_tensorboard()
                next_sync = time.monotonic() + _CHECKPOINT_SYNC_SECONDS
            time.sleep(POLL_SECONDS)
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
