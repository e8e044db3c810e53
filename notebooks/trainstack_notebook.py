"""Small helpers shared by the trainstack notebooks: resource names, uploads, starting and watching runs.

Standard library and boto3 only: the notebook instance has no internet access, so nothing here may need a
package that is not preinstalled there. The notebooks sit next to this file, so `import trainstack_notebook`
works from their working directory.

The notebook's lifecycle configuration writes the platform's resource names to
`/home/ec2-user/SageMaker/trainstack.json` at every start; `TRAINSTACK_RESOURCES` points elsewhere (tests,
a laptop against the embedded AWS).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import boto3

DEFAULT_RESOURCES_PATH = Path("/home/ec2-user/SageMaker/trainstack.json")
RESOURCES_ENV_VAR = "TRAINSTACK_RESOURCES"
TERMINAL_EXECUTION_STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# Environments without a VPC write no subnets or security groups.
_OPTIONAL = {"subnet_ids", "security_group_ids", "tags", "job_name_prefix"}


@dataclass(frozen=True)
class Resources:
    """The platform's resource names, as the lifecycle configuration writes them
    (trainstack/platform/notebook_stack.py)."""

    environment: str
    region: str
    data_bucket: str
    artifacts_bucket: str
    kms_key_arn: str
    execution_role_arn: str
    image_uri: str
    code_package_uri: str
    state_machine_arn: str
    subnet_ids: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    # The platform's `trainstack:*` tags: IAM lets the notebook create only jobs that carry them.
    tags: dict[str, str] = field(default_factory=dict)
    # IAM lets the notebook create only jobs named `<job_name_prefix>-...`.
    job_name_prefix: str = ""

    def client(self, service: str) -> Any:
        """A boto3 client in the platform's region (AWS_ENDPOINT_URL, if set, points it at the embedded AWS)."""
        return boto3.client(service, region_name=self.region)

    def data_uri(self, prefix: str) -> str:
        return f"s3://{self.data_bucket}/{prefix}"


def resources_path() -> Path:
    return Path(os.environ.get(RESOURCES_ENV_VAR) or DEFAULT_RESOURCES_PATH)


def load_resources(path: Path | str | None = None) -> Resources:
    """Read the resource-name file; the error says where it was looked for and how to point elsewhere."""
    source = Path(path) if path is not None else resources_path()
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} does not exist. The notebook instance's lifecycle configuration writes it at start; "
            f"elsewhere, set {RESOURCES_ENV_VAR} to a JSON file with the keys "
            f"{', '.join(f.name for f in fields(Resources))}."
        )
    raw = json.loads(source.read_text(encoding="utf-8"))
    missing = [f.name for f in fields(Resources) if f.name not in raw and f.name not in _OPTIONAL]
    if missing:
        raise KeyError(f"{source}: missing {', '.join(missing)}")
    return Resources(**{f.name: raw[f.name] for f in fields(Resources) if f.name in raw})


# --- S3 -------------------------------------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/or/prefix` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def upload_directory(s3: Any, local: Path | str, bucket: str, prefix: str, kms_key_arn: str | None = None) -> list[str]:
    """Upload every file under `local` to s3://bucket/prefix...; returns the keys written.

    With `kms_key_arn` the objects are encrypted with the platform's key explicitly; the buckets' default
    encryption does the same when it is omitted.
    """
    root = Path(local)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: nothing to upload")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else None
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(root).as_posix()
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
        keys.append(key)
    return keys


def list_prefix(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size for everything under a prefix (to show what a channel will receive)."""
    listed: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        listed.update({obj["Key"]: obj["Size"] for obj in page.get("Contents", [])})
    return listed


def download_model(s3: Any, model_artifacts: str, dest: Path | str) -> Path:
    """Fetch a job's model: `.../model.tar.gz` is downloaded and unpacked; an uncompressed output
    (CompressionType NONE) is a prefix whose files are downloaded as they are. Returns the model folder."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    bucket, key = split_s3_uri(model_artifacts)
    if key.endswith(".tar.gz"):
        archive = out / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths and links out of the folder (a tampered archive).
            tar.extractall(out, filter="data")
        archive.unlink()
        return out
    for object_key in list_prefix(s3, bucket, key):
        target = out / object_key.removeprefix(key).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, object_key, str(target))
    return out


# --- Step Functions -------------------------------------------------------------------------------------------


def start_run(resources: Resources, run_input: dict[str, Any] | None = None, name: str | None = None) -> str:
    """StartExecution as the console's "Start execution" does; returns the execution ARN."""
    sfn = resources.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=resources.state_machine_arn,
        name=name or f"notebook-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        input=json.dumps(run_input or {}),
    )
    return started["executionArn"]


def execution_console_url(resources: Resources, execution_arn: str) -> str:
    """Where the Step Functions console shows the execution's graph."""
    region = resources.region
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


class RunFailed(RuntimeError):
    """The execution ended without success; `error` and `cause` are the state machine's."""

    def __init__(self, status: str, error: str, cause: str) -> None:
        super().__init__(f"execution {status}: {error}: {cause}")
        self.status, self.error, self.cause = status, error, cause


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def _job_name_from(event: dict[str, Any]) -> str | None:
    """The training job's name, from the Train state's TaskScheduled parameters."""
    details = event.get("taskScheduledEventDetails") or {}
    if details.get("resourceType") != "sagemaker":
        return None
    try:
        return json.loads(details.get("parameters") or "{}").get("TrainingJobName")
    except json.JSONDecodeError:
        return None


def watch_execution(
    resources: Resources,
    execution_arn: str,
    *,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3 * 24 * 3600,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Print state transitions and the job's secondary status until the execution ends; return its output.

    Raises RunFailed with the state machine's error and cause when it does not succeed.
    """
    sfn, sagemaker = resources.client("stepfunctions"), resources.client("sagemaker")
    started = time.monotonic()
    seen_events = seen_transitions = 0
    last_state: str | None = None
    job_name: str | None = None

    def say(line: str) -> None:
        echo(f"{time.monotonic() - started:6.1f}s  {line}")

    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        events = _history(sfn, execution_arn)
        for event in events[seen_events:]:
            entered = (event.get("stateEnteredEventDetails") or {}).get("name")
            # Map iterations enter the same state several times in a row: one line is enough.
            if entered and entered != last_state:
                say(f"state {entered}")
                last_state = entered
            job_name = job_name or _job_name_from(event)
        seen_events = len(events)
        if job_name:
            job = sagemaker.describe_training_job(TrainingJobName=job_name)
            transitions = job.get("SecondaryStatusTransitions", [])
            for transition in transitions[seen_transitions:]:
                say(f"job {job_name}: {transition['Status']} - {transition.get('StatusMessage', '')}")
            seen_transitions = len(transitions)
        if described["status"] in TERMINAL_EXECUTION_STATUSES:
            say(f"execution {described['status']}")
            if described["status"] != "SUCCEEDED":
                raise RunFailed(described["status"], described.get("error", ""), described.get("cause", ""))
            return json.loads(described.get("output") or "{}")
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"{execution_arn} still running after {timeout_seconds:.0f}s")
        time.sleep(poll_seconds)


def job_log_lines(resources: Resources, job_name: str, contains: str = "") -> list[str]:
    """A training job's log lines from CloudWatch Logs (every host's stream), optionally only those with `contains`."""
    logs = resources.client("logs")
    lines: list[str] = []
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=job_name
    )
    for page in pages:
        lines.extend(e["message"].rstrip() for e in page["events"] if contains in e["message"])
    return lines


def summarize(output: dict[str, Any]) -> str:
    """The lines a person looks for in a run's output."""
    warm = output.get("warmPool") or {}
    lines = [
        f"job:             {output.get('jobName')}",
        f"status:          {output.get('status')}",
        f"model artifact:  {output.get('modelArtifacts')}",
        f"warm pool:       requested {warm.get('requested')}s, granted {warm.get('granted')}s, "
        f"status {warm.get('status')}",
    ]
    if warm.get("reason"):
        lines.append(f"                 {warm['reason']}")
    if output.get("trainingSeconds") is not None:
        lines.append(f"seconds:         training {output['trainingSeconds']}, billable {output.get('billableSeconds')}")
    return "\n".join(lines)


# --- Bring your own code: the SageMaker SDK v2 Estimator's arguments, through the platform --------------------


def _from_repository() -> None:
    """Make the cloned repository's `trainstack` package importable (its modules used here are standard library)."""
    repo_root = str(Path(__file__).resolve().parent.parent)
    if repo_root not in sys.path:
        sys.path.append(repo_root)


def _source_package() -> Any:
    """trainstack/source_package.py from the cloned repository (standard library only, like this file)."""
    _from_repository()
    import trainstack.source_package as source_package

    return source_package


def _without_platform_environment(
    environment: dict[str, str] | None, instance_count: int | None, resources: Resources
) -> dict[str, str] | None:
    """The seed's NODE_NUMBER and MODEL_S3_BUCKET, accepted when they agree with what the platform sets on every
    job (a run input may not set them); anything else in them is refused by name here, not replaced there."""
    if not environment:
        return environment
    # Without instance_count the environment's default decides the count, which the notebook cannot see.
    platform = {
        "NODE_NUMBER": str(instance_count) if instance_count else None,
        "MODEL_S3_BUCKET": resources.data_bucket,
    }
    for name, value in platform.items():
        if name in environment and value is not None and environment[name] != value:
            raise ValueError(
                f"environment {name}={environment[name]!r}: the platform sets {name}={value!r} on every job; "
                "leave it out or give the same value"
            )
    return {name: value for name, value in environment.items() if name not in platform} or None


class Estimator:
    """`Estimator(...).fit(inputs)` as the SageMaker SDK v2 spells it (the seed's cell ports with few changes),
    run by the platform's state machine: validated, quota-checked, in its VPC with its key and tags.

    `entry_point` and `source_dir` are packed as the SDK packs them, with `source_dir/requirements.txt`
    resolved into wheels for the image's Python (jobs have no package index), uploaded once per content
    under the artifacts bucket's code/ prefix. `fit(inputs)`'s channels are the run's only channels, as in
    the SDK. Arguments the platform decides itself are accepted when they agree with it: `role` (the
    execution role is always the platform's), `disable_profiler=True`, `debugger_hook_config=False`.
    `base_job_name` becomes the job-name prefix: it must start with the environment's (IAM allows only
    those names). Anything else the SDK takes is refused by name rather than silently dropped.
    """

    def __init__(
        self,
        *,
        entry_point: str,
        source_dir: str | Path | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
        image_uri: str | None = None,
        role: str | None = None,
        environment: dict[str, str] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        base_job_name: str | None = None,
        max_run: int | None = None,
        keep_alive_period_in_seconds: int | None = None,
        volume_size: int | None = None,
        use_spot_instances: bool | None = None,
        max_wait: int | None = None,
        tags: list[dict[str, str]] | None = None,
        disable_profiler: bool = True,
        debugger_hook_config: bool = False,
        python_version: str | None = None,
        resources: Resources | None = None,
    ) -> None:
        if not disable_profiler or debugger_hook_config not in (False, None):
            raise ValueError("the platform always runs with the profiler and the debugger hook off")
        self.resources = resources or load_resources()
        self.role = role
        self.entry_point, self.source_dir, self.python_version = entry_point, source_dir, python_version
        environment = _without_platform_environment(environment, instance_count, self.resources)
        self.image_uri = image_uri
        self.run_input_base: dict[str, Any] = {
            key: value
            for key, value in {
                "instance_type": instance_type,
                "instance_count": instance_count,
                "image": image_uri if image_uri and image_uri != self.resources.image_uri else None,
                "environment": environment,
                "hyperparameters": hyperparameters,
                "job_name_prefix": base_job_name,
                "max_runtime_seconds": max_run,
                "keep_alive_seconds": keep_alive_period_in_seconds,
                "volume_size_gb": volume_size,
                "spot": use_spot_instances,
                "max_wait_seconds": max_wait,
                "tags": {tag["Key"]: tag["Value"] for tag in tags} if tags else None,
            }.items()
            if value is not None
        }
        self.package: Any = None
        self.latest_execution_arn: str | None = None
        self.output: dict[str, Any] | None = None

    def _code(self, upload: bool) -> dict[str, str]:
        if self.source_dir is None:
            return {"entry_point": self.entry_point}  # a script of the platform's own package
        source_package = _source_package()
        self.package = source_package.pack(
            self.source_dir,
            self.entry_point,
            image_uri=self.image_uri or self.resources.image_uri,
            python_version=self.python_version,
        )
        if upload:
            source_package.upload(
                self.resources.client("s3"), self.package, self.resources.artifacts_bucket, self.resources.kms_key_arn
            )
        return {"package": self.package.uri(self.resources.artifacts_bucket), "entry_point": self.entry_point}

    def run_input(self, inputs: dict[str, Any] | str | None = None, *, upload: bool = False) -> dict[str, Any]:
        """The execution input `fit(inputs)` starts (the console's JSON); packs the code (uploads with `upload`)."""
        if isinstance(inputs, str):
            inputs = {"training": inputs}  # the SDK's name for a single unnamed channel
        channels = {}
        for name, value in (inputs or {}).items():
            # An SDK TrainingInput carries its S3 URI and input mode in `.config`.
            config = getattr(value, "config", None)
            if config is not None:
                source = config["DataSource"]["S3DataSource"]
                value = {
                    "prefix": source["S3Uri"],
                    **({"input_mode": config["InputMode"]} if "InputMode" in config else {}),
                }
            channels[name] = value
        return {**self.run_input_base, "code": self._code(upload), "channels": channels, "replace_channels": True}

    def fit(
        self,
        inputs: dict[str, Any] | str | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
    ) -> dict[str, Any] | None:
        """Pack and upload the code, start the state machine; with `wait`, watch it and return its output."""
        run_input = self.run_input(inputs, upload=True)
        if logs:
            print(self.memory_plan(run_input))
        self.latest_execution_arn = start_run(self.resources, run_input, name=job_name)
        if not wait:
            return None
        self.output = watch_execution(
            self.resources, self.latest_execution_arn, echo=print if logs else (lambda _: None)
        )
        return self.output

    def memory_plan(self, run_input: dict[str, Any] | None = None) -> str:
        """The training script's memory plan for this run (training_code/memory_plan.py), from config.json."""
        from trainstack.memory_preview import memory_plan_text

        run_input = run_input or self.run_input()
        model = run_input["channels"].get("model")
        return memory_plan_text(
            run_input.get("hyperparameters") or {},
            run_input.get("instance_type"),
            run_input.get("instance_count"),
            model.get("prefix") if isinstance(model, dict) else model,
            self.resources.client("s3"),
            (run_input.get("environment") or {}).get("MODEL_S3_BUCKET"),
        )

    @property
    def model_data(self) -> str | None:
        """The model artifact's S3 URI, as the SDK's `Estimator.model_data`."""
        return (self.output or {}).get("modelArtifacts")


# --- Building a CreateTrainingJob request without sending it ------------------------------------------------


class RequestCaptured(Exception):
    """Raised in place of sending CreateTrainingJob; `request` holds the API parameters botocore validated."""

    def __init__(self, request: dict[str, Any]) -> None:
        super().__init__(f"CreateTrainingJob {request.get('TrainingJobName')} captured, not sent")
        self.request = request


def stop_create_training_job(boto_session: Any) -> None:
    """From now on, every CreateTrainingJob made through clients of `boto_session` raises RequestCaptured
    instead of being sent.

    `before-parameter-build` sees the call's parameters; `before-call` comes after botocore has validated
    them against the SageMaker service model, so a request that reaches it is well-formed. Call this before
    anything creates a client from the session: clients copy the session's event handlers when created.
    """
    events = boto_session._session.get_component("event_emitter")
    seen: dict[str, Any] = {}

    def keep(params: dict[str, Any], **_: Any) -> None:
        seen.clear()
        seen.update(copy.deepcopy(params))

    def stop(**_: Any) -> None:
        raise RequestCaptured(dict(seen))

    events.register("before-parameter-build.sagemaker.CreateTrainingJob", keep, unique_id="trainstack-keep")
    events.register("before-call.sagemaker.CreateTrainingJob", stop, unique_id="trainstack-stop")


def validate_create_training_job(request: dict[str, Any]) -> None:
    """Raise botocore's ParamValidationError if `request` does not fit the SageMaker service model."""
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    model = get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob")
    validate_parameters(request, model.input_shape)


def platform_request_problems(request: dict[str, Any], resources: Resources) -> list[str]:
    """What in a CreateTrainingJob request departs from the platform (its role, image, buckets, key, VPC, tags,
    encryption between nodes): each of these the notebook role's IAM conditions would refuse too."""
    problems = []
    tags = {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])}
    for key, value in resources.tags.items():
        if tags.get(key) != value:
            problems.append(f"tag {key} is {tags.get(key)!r}, the platform's is {value!r}")
    if request.get("EnableInterContainerTrafficEncryption") is not True:
        problems.append("EnableInterContainerTrafficEncryption must be true")
    resource_config = request.get("ResourceConfig", {})
    _from_repository()
    from trainstack.instance_storage import has_local_storage

    # The SDK sends no volume key for a type with local NVMe storage (SageMaker refuses one there); IAM demands
    # the platform's everywhere else.
    local = has_local_storage(str(resource_config.get("InstanceType", "ml.unknown.x")))
    expectations = {
        "RoleArn": (request.get("RoleArn"), resources.execution_role_arn),
        "TrainingImage": (request.get("AlgorithmSpecification", {}).get("TrainingImage"), resources.image_uri),
        "OutputDataConfig.KmsKeyId": (request.get("OutputDataConfig", {}).get("KmsKeyId"), resources.kms_key_arn),
        "ResourceConfig.VolumeKmsKeyId": (
            resource_config.get("VolumeKmsKeyId"),
            None if local else resources.kms_key_arn,
        ),
    }
    if resources.subnet_ids:
        vpc = request.get("VpcConfig", {})
        expectations["VpcConfig.Subnets"] = (sorted(vpc.get("Subnets", [])), sorted(resources.subnet_ids))
        expectations["VpcConfig.SecurityGroupIds"] = (
            sorted(vpc.get("SecurityGroupIds", [])),
            sorted(resources.security_group_ids),
        )
    for name, (actual, expected) in expectations.items():
        if actual != expected:
            problems.append(f"{name} is {actual!r}, the platform's is {expected!r}")
    outputs = {"output": request.get("OutputDataConfig", {}).get("S3OutputPath", "s3://")}
    if "TensorBoardOutputConfig" in request:
        outputs["TensorBoard output"] = request["TensorBoardOutputConfig"].get("S3OutputPath", "s3://")
    for what, uri in outputs.items():
        bucket, _ = split_s3_uri(uri)
        if bucket != resources.artifacts_bucket:
            problems.append(f"{what} goes to {bucket!r}, not the artifacts bucket {resources.artifacts_bucket!r}")
    for channel in request.get("InputDataConfig", []):
        uri = channel["DataSource"].get("S3DataSource", {}).get("S3Uri", "")
        if split_s3_uri(uri)[0] not in (resources.data_bucket, resources.artifacts_bucket):
            problems.append(f"channel {channel['ChannelName']} reads {uri}, outside the platform's buckets")
    return problems
