"""Typed, validated environment configuration: the one place every knob of the platform is defined.

An environment is a YAML file `config/<name>.yaml`. Platform teams copy one, change account, region,
network, tags and limits, and `cdk synth` either builds that environment or fails with a message that
names the file, the field and what is allowed. Everything else (stacks, the embedded AWS, the CLI)
reads the models below and never the raw YAML.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import botocore.session
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainstack.image_compatibility import check_image
from trainstack.instance_storage import unclassified
from trainstack.run_environment_rules import allowed_entry_problems

# An app's environment files, when a caller names an environment rather than a YAML path: `config/` of the CDK
# app the command runs in (as `cdk` finds its cdk.json), or the folder $TRAINSTACK_CONFIG_DIR names.
CONFIG_DIR_VARIABLE = "TRAINSTACK_CONFIG_DIR"

# SageMaker documents 3600 s as the warm-pool keep-alive maximum.
MAX_KEEP_ALIVE_SECONDS = 3600
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
# Job names are at most 63 characters: the prefix, "-", the 17-digit start time, "-" and 8 of the execution
# name (trainstack/platform/constructs/training_run_input.py's JOB_NAME_EXPRESSION) leave 30 for the prefix.
MAX_JOB_NAME_PREFIX_LENGTH = 30
# "Longest run time for a training job" can be raised to 28 days, never beyond.
MAX_RUNTIME_CEILING_SECONDS = 28 * 24 * 3600
# How long a run may wait for instances held by other jobs and pools; a week bounds a forgotten execution.
MAX_CAPACITY_WAIT_SECONDS = 7 * 24 * 3600

# Deep Learning Containers live in one registry account per region; most regions share 763104351884,
# opt-in and China regions have their own. A wrong account gives "image not found" at job start.
_DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
}
_DEFAULT_DLC_ACCOUNT = "763104351884"

INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9-]+\.[0-9]*x?large$|^ml\.[a-z0-9-]+\.(medium|small|micro)$"
_NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
_ACCOUNT_PATTERN = r"^[0-9]{12}$"
_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
# botocore's TrackingServerArn (`arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-tracking-server/.*`),
# with the name narrowed to CreateMlflowTrackingServer's TrackingServerName; the groups are partition,
# region and account, which must be the environment's own (EnvironmentConfig checks them).
MLFLOW_TRACKING_SERVER_ARN_PATTERN = (
    r"^arn:(aws[a-z-]*):sagemaker:([a-z0-9-]+):([0-9]{12}):mlflow-tracking-server/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"
)
_S3_PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()/-]*$"
# ECR repository names (lowercase path segments) and image tags, as ECR allows them.
ECR_REPOSITORY_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


@cache
def training_instance_types() -> list[str]:
    """Every instance type CreateTrainingJob accepts (botocore's TrainingInstanceType enum)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for("TrainingInstanceType").enum)


def training_instance_families() -> list[str]:
    return sorted({instance_type.split(".")[1] for instance_type in training_instance_types()})


class ConfigError(Exception):
    """A configuration file is missing or invalid; the message names the file and each bad field."""


# Fields renamed in a release, old dotted name -> new: the old name keeps working for one more minor release with
# a warning naming both (as TRL's configs do), then its entry leaves this table and the name is refused as unknown.
RENAMED_FIELDS: dict[str, str] = {}


class RenamedFieldWarning(FutureWarning):
    """An environment file uses a field's old name. A FutureWarning, not a DeprecationWarning: Python shows it to
    whoever runs `cdk synth`, where a DeprecationWarning raised inside a library stays hidden."""


def apply_renames(data: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """`data` with each old dotted name in `renames` moved to its new name (a copy; the input is left alone)."""
    for old, new in renames.items():
        *old_parents, old_leaf = old.split(".")
        container = _section(data, old_parents, create=False)
        if container is None or old_leaf not in container:
            continue
        data = copy.deepcopy(data)
        container = _section(data, old_parents, create=False)
        assert container is not None
        *new_parents, new_leaf = new.split(".")
        target = _section(data, new_parents, create=True)
        if target is None or new_leaf in target:
            raise ValueError(f"{old} is the old name of {new}: give {new} only")
        target[new_leaf] = container.pop(old_leaf)
        warnings.warn(
            f"{old} is renamed {new}; the old name stops working in the next minor release",
            RenamedFieldWarning,
            stacklevel=2,
        )
    return data


def _section(data: dict[str, Any], path: list[str], *, create: bool) -> dict[str, Any] | None:
    for key in path:
        if create and key not in data:
            data[key] = {}
        data = data.get(key)  # type: ignore[assignment]
        if not isinstance(data, dict):
            return None
    return data


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise: reject them instead of silently ignoring.
    model_config = ConfigDict(extra="forbid", frozen=True)


# Interface endpoints a job or notebook without internet access needs (`com.amazonaws.<region>.<service>`), by the
# construct id the network stack gives them: the SageMaker API (the notebook starting jobs), ECR (image pull),
# CloudWatch Logs and metrics, STS, KMS, Step Functions and Service Quotas (the notebook and CLI start runs and
# read quotas). `create` makes each; `existing` must list each in `network.endpoint_services`.
INTERFACE_ENDPOINT_SERVICES: dict[str, str] = {
    "SageMakerApi": "sagemaker.api",
    "SageMakerRuntime": "sagemaker.runtime",
    "EcrApi": "ecr.api",
    "EcrDocker": "ecr.dkr",
    "Logs": "logs",
    "Monitoring": "monitoring",
    "Sts": "sts",
    "Kms": "kms",
    "StepFunctions": "states",
    "ServiceQuotas": "servicequotas",
}
# The AWS-managed S3 prefix list (`com.amazonaws.<region>.s3`) of the regions we have checked, from
# `aws ec2 describe-managed-prefix-lists --filters Name=prefix-list-name,Values=com.amazonaws.<region>.s3`.
# Synth fills `network.s3_prefix_list_id` from it and refuses a different id; other regions must give theirs.
S3_PREFIX_LISTS: dict[str, str] = {
    "us-east-1": "pl-63a5400a",
    "us-east-2": "pl-7ba54012",
    "us-west-1": "pl-6ba54002",
    "us-west-2": "pl-68a54001",
    "eu-west-1": "pl-6da54004",
    "eu-central-1": "pl-6ea54007",
    "ap-northeast-1": "pl-61a54008",
    "ap-southeast-1": "pl-6fa54006",
    "ap-southeast-2": "pl-6ca54005",
}


class NetworkMode(StrEnum):
    NONE = "none"
    CREATE = "create"
    EXISTING = "existing"


class NetworkConfig(_Strict):
    """Where training jobs and the notebook run. `none` uses SageMaker's managed network."""

    mode: NetworkMode = Field(
        NetworkMode.NONE,
        description=(
            "`none` (SageMaker's managed network), `create` (a private VPC: no NAT, flow logs, an S3 gateway "
            "endpoint and the SageMaker, ECR, Logs, STS, KMS, Step Functions and Service Quotas interface "
            "endpoints) or `existing` (a VPC of yours, named below)."
        ),
    )
    cidr: str = Field(
        "10.42.0.0/16",
        pattern=r"^\d+\.\d+\.\d+\.\d+/(1[6-9]|2[0-4])$",
        description="The VPC's address range, for `create` (a /16 to /24).",
    )
    max_azs: int = Field(2, ge=1, le=3, description="How many availability zones the VPC spans, for `create`.")
    # `existing`: given explicitly so synth never needs a VPC lookup (and so no credentials).
    vpc_id: str | None = Field(
        None,
        pattern=r"^vpc-[0-9a-f]{8,17}$",
        description="For `existing`: the VPC, given so synth needs no lookup (and no credentials).",
    )
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        [], description="For `existing`: private subnets, one availability zone each."
    )
    availability_zones: list[str] = Field(
        [], description="For `existing`: the availability zone of each subnet, in the same order."
    )
    # The region's AWS-managed S3 prefix list (`aws ec2 describe-managed-prefix-lists --filters
    # Name=prefix-list-name,Values=com.amazonaws.<region>.s3`): the training group's only HTTPS egress to S3.
    # Given, not looked up, so synth needs no credentials; the gateway endpoint's addresses are not in the VPC.
    s3_prefix_list_id: str | None = Field(
        None,
        pattern=r"^pl-[0-9a-f]{8,17}$",
        description=(
            "With a VPC: the region's S3 prefix list, the training group's only S3 egress (through the "
            "gateway endpoint). Filled in from `S3_PREFIX_LISTS` in `trainstack/config.py` where the region "
            "is listed (a different id is refused); other regions must give it (`aws ec2 "
            "describe-managed-prefix-lists --filters "
            "Name=prefix-list-name,Values=com.amazonaws.<region>.s3`)."
        ),
    )
    # `existing`: the security groups of the VPC's interface endpoints (INTERFACE_ENDPOINT_SERVICES); the
    # training group may send HTTPS to these and nowhere else besides S3.
    endpoint_security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        [],
        description=(
            "Required for `existing`: the security groups of the VPC's interface endpoints, the only other "
            "HTTPS destinations of the training group."
        ),
    )
    # `existing`: the services of the VPC's interface endpoints (`com.amazonaws.<region>.<service>`, e.g.
    # `sagemaker.api`); synth refuses a VPC without one the platform needs.
    endpoint_services: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")]] = Field(
        [],
        description=(
            "Required for `existing`: the services of the VPC's interface endpoints "
            "(`com.amazonaws.<region>.<service>`); synth refuses the VPC unless it has `sagemaker.api`, "
            "`sagemaker.runtime`, `ecr.api`, `ecr.dkr`, `logs`, `monitoring`, `sts`, `kms`, `states` and "
            "`servicequotas` (what `create` makes)."
        ),
    )

    @model_validator(mode="after")
    def _existing_needs_ids(self) -> NetworkConfig:
        if self.mode is NetworkMode.EXISTING:
            if not self.vpc_id:
                raise ValueError("mode 'existing' needs vpc_id (vpc-...)")
            if not self.subnet_ids:
                raise ValueError("mode 'existing' needs subnet_ids: the private subnets jobs run in")
            if len(self.availability_zones) != len(self.subnet_ids):
                raise ValueError("mode 'existing' needs one availability_zones entry per subnet_ids entry")
            if not self.endpoint_security_group_ids:
                raise ValueError(
                    "mode 'existing' needs endpoint_security_group_ids (sg-...): the security groups of the VPC's "
                    "interface endpoints, the only HTTPS destinations the training group allows besides S3"
                )
            missing = [name for name in INTERFACE_ENDPOINT_SERVICES.values() if name not in self.endpoint_services]
            if missing:
                raise ValueError(
                    "mode 'existing' needs the VPC's interface endpoints for every service jobs and the notebook "
                    f"call without internet access: endpoint_services lacks {', '.join(missing)} "
                    "(com.amazonaws.<region>.<service>; create the endpoints, then list them)"
                )
        elif self.vpc_id or self.subnet_ids or self.endpoint_security_group_ids or self.endpoint_services:
            raise ValueError(
                "vpc_id/subnet_ids/endpoint_security_group_ids/endpoint_services are only read when mode is "
                f"'existing', not '{self.mode.value}'"
            )
        if self.mode is not NetworkMode.NONE and not self.s3_prefix_list_id:
            raise ValueError(
                f"mode '{self.mode.value}' needs s3_prefix_list_id (pl-...): the region's S3 prefix list, from "
                "`aws ec2 describe-managed-prefix-lists "
                "--filters Name=prefix-list-name,Values=com.amazonaws.<region>.s3`"
            )
        return self


class ImageMode(StrEnum):
    DLC = "dlc"
    ASSET = "asset"
    REPOSITORY = "repository"


class ImageConfig(_Strict):
    """The training image.

    `dlc`: a Deep Learning Container used as is (region-correct registry); `asset`: built by `cdk deploy`
    from training_code/Dockerfile; `repository`: a tag pushed to the platform's own ECR repository.
    """

    mode: ImageMode = Field(
        ImageMode.DLC,
        description=(
            "`dlc`: a Deep Learning Container as is; `asset`: built from `training_code/Dockerfile` by `cdk "
            "deploy` (needs Docker; pushed to the CDK bootstrap's container-assets repository); `repository`:"
            " `repository_tag` of the platform's hardened ECR repository, created only in this mode."
        ),
    )
    dlc_repository: str = Field(
        "huggingface-pytorch-training",
        description=(
            "The Deep Learning Container's repository (in the region's DLC registry account); in `asset` mode"
            " the Dockerfile's base. With `dlc_tag` it must be in `trainstack/data/dlc_images.json` and "
            "satisfy `training_code/requirements.txt`."
        ),
    )
    dlc_tag: str = Field(
        "2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04",
        description="The Deep Learning Container's tag (see `dlc_repository`).",
    )
    uri: str | None = Field(
        None,
        description=(
            "Any image URI; overrides the mode when set (synth cannot inspect it, so its packages are not checked)."
        ),
    )
    repository_tag: str = Field(
        "latest", description="In `repository` mode: the tag of the platform's ECR repository that jobs run."
    )
    untagged_image_expiry_days: int = Field(
        14, ge=1, le=3650, description="In `repository` mode: the ECR lifecycle rule's age for untagged images."
    )
    # Deep Learning Container repositories a run may pick an image from (any tag), by the run input's
    # `image`; the platform's own ECR repository is always allowed. The execution role pulls exactly these.
    allowed_dlc_repositories: list[Annotated[str, Field(pattern=ECR_REPOSITORY_PATTERN)]] = Field(
        [],
        description=(
            "DLC repositories (in the region's DLC registry) a run's `image` may name, any tag or digest, "
            "besides the platform's own repository in `repository` mode and `dlc_repository` in `dlc` mode. "
            "The execution role may pull exactly these; anything else is `InvalidInput`."
        ),
    )

    def dlc_registry(self, region: str) -> str:
        account = _DLC_ACCOUNTS.get(region, _DEFAULT_DLC_ACCOUNT)
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"{account}.dkr.ecr.{region}.{suffix}"

    def dlc_uri(self, region: str) -> str:
        return f"{self.dlc_registry(region)}/{self.dlc_repository}:{self.dlc_tag}"


@dataclass(frozen=True)
class NotebookPlatform:
    operating_system: str
    system_python: str  # /usr/bin/python3, which the lifecycle scripts run on
    created_until: dt.date | None  # the last day AWS creates (or restarts) such an instance; None: still created


# Notebook instance platforms (botocore's `PlatformIdentifier` values), from the SageMaker Developer Guide's
# "Amazon Linux 2023 notebook instances" and "Amazon Linux 2 notebook instances" pages: AL2 reached end of
# support on 2026-06-30 and from 2026-07-01 AL2 instances can no longer be created or restarted;
# `notebook-al2023-v1` is the default since 2026-05-15. AL1 notebook instances ended with the Amazon Linux AMI
# (end of life 2023-12-31). Synth and the embedded SageMaker refuse a platform past its date.
NOTEBOOK_PLATFORMS: dict[str, NotebookPlatform] = {
    "notebook-al1-v1": NotebookPlatform("Amazon Linux 1", "3.6", dt.date(2023, 12, 31)),
    "notebook-al2-v1": NotebookPlatform("Amazon Linux 2", "3.7", dt.date(2026, 6, 30)),
    "notebook-al2-v2": NotebookPlatform("Amazon Linux 2", "3.7", dt.date(2026, 6, 30)),
    "notebook-al2-v3": NotebookPlatform("Amazon Linux 2", "3.7", dt.date(2026, 6, 30)),
    "notebook-al2023-v1": NotebookPlatform("Amazon Linux 2023", "3.9", None),
    "notebook-al2023-v2": NotebookPlatform("Amazon Linux 2023", "3.9", None),
}
# The oldest system Python of the platforms still created: what trainstack/platform/notebook_lifecycle/ must run
# on (vermin checks).
LIFECYCLE_PYTHON = "3.9"


def notebook_platform_problem(identifier: str, today: dt.date) -> str | None:
    """Why AWS would not create a notebook instance on `identifier` on `today`; None when it would."""
    creatable = [name for name, p in NOTEBOOK_PLATFORMS.items() if p.created_until is None or p.created_until >= today]
    platform = NOTEBOOK_PLATFORMS.get(identifier)
    if platform is None:
        return f"'{identifier}' is not a notebook instance platform; use one of {', '.join(creatable)}"
    if platform.created_until is not None and platform.created_until < today:
        return (
            f"{platform.operating_system} notebook instances ('{identifier}') can no longer be created or restarted "
            f"since {platform.created_until + dt.timedelta(days=1)}; use one of {', '.join(creatable)}"
        )
    return None


class NotebookConfig(_Strict):
    enabled: bool = Field(
        True,
        description=(
            "A locked-down SageMaker notebook instance; needs `network.mode` other than `none` (no direct "
            "internet access)."
        ),
    )
    # Checked against NOTEBOOK_PLATFORMS at synth: a platform AWS no longer creates fails synth, not the deploy.
    platform_identifier: str = Field(
        "notebook-al2023-v1",
        description=(
            "The notebook's platform; synth refuses one AWS no longer creates (`NOTEBOOK_PLATFORMS` in "
            "`trainstack/config.py`: Amazon Linux 2 since 2026-07-01). The lifecycle scripts run on its "
            "system Python and systemd."
        ),
    )
    instance_type: str = Field(
        "ml.t3.medium", pattern=INSTANCE_TYPE_PATTERN, description="The notebook instance's type."
    )
    volume_size_gb: int = Field(
        20, ge=5, le=16384, description="The notebook's volume, encrypted with the platform key."
    )
    idle_stop_minutes: int = Field(
        60, ge=5, le=24 * 60, description="The notebook stops itself after this many idle minutes."
    )

    @field_validator("platform_identifier")
    @classmethod
    def _platform_still_created(cls, value: str) -> str:
        problem = notebook_platform_problem(value, dt.datetime.now(dt.UTC).date())
        if problem:
            raise ValueError(problem)
        return value


class StorageConfig(_Strict):
    noncurrent_version_expiry_days: int = Field(
        30, ge=1, le=3650, description="Days the buckets keep an object's noncurrent versions."
    )
    checkpoint_expiry_days: int = Field(30, ge=1, le=3650, description="Days the artifacts bucket keeps checkpoints.")
    access_log_expiry_days: int = Field(
        365, ge=1, le=3650, description="Days the access-log bucket keeps server access logs."
    )
    incomplete_upload_expiry_days: int = Field(
        7, ge=1, le=365, description="Days before an incomplete multipart upload is aborted."
    )


class InstanceCountRange(_Strict):
    default: int = Field(1, ge=1, description="Instances a run gets when it names none.")
    min: int = Field(1, ge=1, description="The fewest instances a run may ask for.")
    max: int = Field(4, ge=1, le=100, description="The most instances a run may ask for.")

    @model_validator(mode="after")
    def _ordered(self) -> InstanceCountRange:
        if not self.min <= self.default <= self.max:
            raise ValueError(f"needs min <= default <= max, got {self.min} <= {self.default} <= {self.max}")
        return self


class InputMode(StrEnum):
    FILE = "File"
    FAST_FILE = "FastFile"
    PIPE = "Pipe"


class ChannelDefault(_Strict):
    """A default input channel: an S3 prefix inside the platform's data bucket."""

    prefix: str = Field(
        pattern=_S3_PREFIX_PATTERN,
        min_length=1,
        description="The channel's S3 prefix inside the platform's data bucket (e.g. `datasets/train/`).",
    )
    input_mode: InputMode = Field(
        InputMode.FILE, description="SageMaker's input mode for the channel: `File`, `FastFile` or `Pipe`."
    )


class CompressionType(StrEnum):
    GZIP = "GZIP"
    NONE = "NONE"


class TrainingConfig(_Strict):
    """Defaults for every training run; the execution input may override the ones marked per run."""

    entry_point: str = Field(
        "run_train.py",
        pattern=r"^[A-Za-z0-9_./-]+\.(py|sh)$",
        description=(
            "The script in `training_code/` (`.py` or `.sh`) jobs run; a run's `code.entry_point` overrides it."
        ),
    )
    instance_type: str = Field(
        "ml.g5.2xlarge", pattern=INSTANCE_TYPE_PATTERN, description="The instance type of a run that names none."
    )
    # Instance families a run may ask for (the part between "ml." and the size).
    allowed_instance_families: list[str] = Field(
        ["g5", "p4d", "p4de", "p5"],
        description=(
            "Instance families (between `ml.` and the size) a run may ask for; also IAM's "
            "`sagemaker:InstanceTypes` (`ml.<family>.*`) on every role that creates jobs. Each must be "
            "classified in `trainstack/data/instance_storage.json` (local NVMe: no volume key is sent; EBS: "
            "the platform key is required), else the config is refused."
        ),
    )
    instance_count: InstanceCountRange = Field(
        InstanceCountRange(),
        description="The instance count of a run that names none, and the range a run may ask for.",
    )
    volume_size_gb: int = Field(30, ge=1, le=16384, description="Each instance's EBS volume for a run that names none.")
    max_runtime_seconds: int = Field(
        2 * 24 * 3600,
        ge=60,
        le=MAX_RUNTIME_CEILING_SECONDS,
        description=(
            "A run's longest run time when it names none (two days); checked against the quota \"Longest run "
            'time for a training job" at run time.'
        ),
    )
    keep_alive_seconds: int = Field(
        0,
        ge=0,
        le=MAX_KEEP_ALIVE_SECONDS,
        description=(
            "Warm pool keep-alive of a run that names none (0 to 3600), granted only with warm-pool quota headroom."
        ),
    )
    # What a run (or a job created from the notebook) may ask for at most; IAM refuses anything longer
    # (`sagemaker:MaxRuntimeInSeconds`, `sagemaker:KeepAlivePeriod` on every role that creates jobs).
    max_runtime_ceiling_seconds: int = Field(
        MAX_RUNTIME_CEILING_SECONDS,
        ge=60,
        le=MAX_RUNTIME_CEILING_SECONDS,
        description=(
            "The longest run time a run or a notebook job may ask for; IAM refuses longer "
            "(`sagemaker:MaxRuntimeInSeconds`) and the run input is refused with `InvalidInput` first."
        ),
    )
    keep_alive_ceiling_seconds: int = Field(
        MAX_KEEP_ALIVE_SECONDS,
        ge=0,
        le=MAX_KEEP_ALIVE_SECONDS,
        description=(
            "The longest warm-pool keep-alive a run or a notebook job may ask for; IAM refuses longer "
            "(`sagemaker:KeepAlivePeriod`)."
        ),
    )
    spot: bool = Field(False, description="Managed spot training for runs that do not say (never with warm pools).")
    max_wait_seconds: int | None = Field(
        None,
        ge=60,
        le=MAX_RUNTIME_CEILING_SECONDS,
        description="With spot: how long a job may wait for spot capacity and run, at least `max_runtime_seconds`.",
    )
    retry_attempts: int = Field(
        2, ge=1, le=30, description="SageMaker's `RetryStrategy` attempts (capacity and internal errors)."
    )
    # A run the quota could serve once running jobs and pools end waits this long for them (0: fail at once).
    capacity_wait_seconds: int = Field(
        3600,
        ge=0,
        le=MAX_CAPACITY_WAIT_SECONDS,
        description=(
            "How long a run waits in `WaitingForCapacity` while running jobs and warm pools hold the "
            "instances its quota allows (0 to 604800; looks after 2, 4, 8 ... s, then every 60 s or a sixth "
            "of the time waited, at most every 10 min; a long wait continues in fresh executions before Step "
            "Functions' history limit). 0 fails at once with `CapacityUnavailable`; a run's "
            "`capacity_wait_seconds` overrides it."
        ),
    )
    # Job names are `<job_name_prefix>-<start time>-<execution>` (at most 63 characters); IAM lets the
    # environment's roles touch only `<job_name_prefix>-*`. Defaults to the environment's `prefix`, so two
    # environments in one account never share it (EnvironmentConfig fills it in; load_all checks the account).
    # max_length too: the pattern's `-*` would let dashes run past 30 characters.
    job_name_prefix: str = Field(
        "trainstack",
        pattern=r"^[a-z0-9](-*[a-z0-9]){0,29}$",
        max_length=MAX_JOB_NAME_PREFIX_LENGTH,
        description=(
            "Job names are `<job_name_prefix>-<start time>-<execution>` (63 characters at most, so at most 30"
            " lowercase letters, digits and dashes). Defaults to the environment's `prefix` (a longer "
            "`prefix` must name one). IAM lets the environment's roles touch only "
            "`training-job/<job_name_prefix>-*`, and synth refuses two environments of one account and region"
            " whose prefixes nest (`trainstack-dev` and `trainstack-dev-eu`)."
        ),
    )
    container_log_level: int = Field(
        20, ge=0, le=50, description="`sagemaker_container_log_level` of every job (Python logging levels, 20 is INFO)."
    )
    compression: CompressionType = Field(
        CompressionType.GZIP,
        description="How the model folder is uploaded: `GZIP`, or `NONE` (large models) uncompressed.",
    )
    hyperparameters: dict[str, Any] = Field(
        {},
        description=(
            "Defaults merged under each run's hyperparameters. At synth they go through the run input's own "
            "rules, so a default no run could send fails `cdk synth` naming the field and the rule id."
        ),
    )
    environment: dict[str, str] = Field(
        {},
        description=(
            "Environment variables merged under each run's, checked at synth by the run input's rules (e.g. "
            "`training.environment.PYTHONWARNINGS: a run may not set it: ... [environment-allow-list]`)."
        ),
    )
    # Environment variable names (or `PREFIX_*` families) a run may set besides the built-in allow-list
    # (trainstack/schemas/run-environment-rules.json); none of its refused names can be allowed.
    allowed_environment: list[str] = Field(
        [],
        description=(
            "Environment variable names (or `PREFIX_*` families) a run may set besides the built-in "
            "allow-list (`trainstack/schemas/run-environment-rules.json`); a name of a refused group "
            "(`BROWSER`, `PYTHON*`-style families that cover `PYTHONPATH`) is refused at synth."
        ),
    )
    channels: dict[str, ChannelDefault] = Field(
        {},
        description=(
            'Default input channels, `name: {prefix: "datasets/train/", input_mode: File}`: prefixes in the '
            "data bucket, merged under each run's."
        ),
    )
    checkpoints: bool = Field(
        True,
        description=(
            "`CheckpointConfig` to `s3://<artifacts>/checkpoints/<run>/`: one prefix per run, shared by its "
            "capacity retries and by runs that `resume_from` it."
        ),
    )
    # How long the training log group (/aws/sagemaker/TrainingJobs) keeps job logs; set at deploy time.
    log_retention_days: int = Field(
        365,
        description=(
            "Retention of `/aws/sagemaker/TrainingJobs`, set with the platform key by `cdk deploy` (a "
            "CloudWatch Logs period: 1, 3, 5, 7, 14, 30, 60, 90, ...)."
        ),
    )
    notification_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        [], description="Addresses subscribed to the failure topic."
    )
    mlflow_tracking_server_arn: str | None = Field(
        None,
        pattern=MLFLOW_TRACKING_SERVER_ARN_PATTERN,
        max_length=2048,
        description=(
            "A SageMaker managed MLflow tracking server "
            "(`arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>`) in the environment's own "
            "account and region. When set, every job gets `MLFLOW_TRACKING_URI` (this ARN) and "
            "`MLFLOW_EXPERIMENT_NAME` (the environment's name), the execution role may log runs to this "
            "server only (`MLFLOW_LOGGING_ACTIONS` in "
            "`trainstack/platform/constructs/sagemaker_execution_role.py`), and a run may not set `MLFLOW_*`."
            " Create the server yourself; the platform does not."
        ),
    )

    @field_validator("allowed_instance_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        known = training_instance_families()
        for family in value:
            if family not in known:
                raise ValueError(
                    f"'{family}' is not a SageMaker training instance family (botocore's TrainingInstanceType); "
                    f"known: {', '.join(known)}"
                )
        if not value:
            raise ValueError("needs at least one instance family")
        # The request and the IAM rails send a volume key only where the family has no local storage.
        unknown = unclassified(value)
        if unknown:
            raise ValueError(
                f"{unknown}: not in trainstack/data/instance_storage.json, so whether a job may name a volume KMS "
                f"key is unknown; classify the family there first (local NVMe storage or EBS)"
            )
        return value

    @field_validator("allowed_environment")
    @classmethod
    def _allowed_environment(cls, value: list[str]) -> list[str]:
        problems = allowed_entry_problems(value, field="allowed_environment")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; one of {allowed}")
        return value

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, ChannelDefault]) -> dict[str, ChannelDefault]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9\.\-_]{1,64}", name):
                raise ValueError(f"channel name '{name}' must match [A-Za-z0-9.-_]{{1,64}}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> TrainingConfig:
        family = self.instance_type.split(".")[1]
        if family not in self.allowed_instance_families:
            raise ValueError(
                f"instance_type '{self.instance_type}' is of family '{family}', which is not in "
                f"allowed_instance_families {self.allowed_instance_families}"
            )
        if self.spot and self.keep_alive_seconds:
            raise ValueError("warm pools (keep_alive_seconds > 0) are not available with spot training")
        if self.max_runtime_seconds > self.max_runtime_ceiling_seconds:
            raise ValueError(
                f"max_runtime_seconds {self.max_runtime_seconds} exceeds max_runtime_ceiling_seconds "
                f"{self.max_runtime_ceiling_seconds}"
            )
        if self.keep_alive_seconds > self.keep_alive_ceiling_seconds:
            raise ValueError(
                f"keep_alive_seconds {self.keep_alive_seconds} exceeds keep_alive_ceiling_seconds "
                f"{self.keep_alive_ceiling_seconds}"
            )
        if self.max_wait_seconds is not None and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError("max_wait_seconds must be at least max_runtime_seconds")
        return self


class InstanceQuota(_Strict):
    """Quota values the embedded AWS serves for one instance type (real accounts ignore this)."""

    training_job_usage: int = Field(
        ge=0, description='The quota "<type> for training job usage" the embedded AWS serves.'
    )
    training_warm_pool_usage: int = Field(
        0, ge=0, description='The quota "<type> for training warm pool usage" the embedded AWS serves.'
    )
    spot_training_job_usage: int = Field(
        0, ge=0, description='The quota "<type> for spot training job usage" the embedded AWS serves.'
    )


class EmbeddedQuotas(_Strict):
    """What the embedded Service Quotas answers for SageMaker; moto knows none of these."""

    longest_run_time_seconds: int = Field(
        5 * 24 * 3600, ge=1, description='The quota "Longest run time for a training job" the embedded AWS serves.'
    )
    instances: dict[str, InstanceQuota] = Field(
        {}, description="Per instance type (`ml.m5.xlarge`): the instance quotas the embedded AWS serves."
    )

    @field_validator("instances")
    @classmethod
    def _types(cls, value: dict[str, InstanceQuota]) -> dict[str, InstanceQuota]:
        for instance_type in value:
            if not re.fullmatch(INSTANCE_TYPE_PATTERN, instance_type):
                raise ValueError(f"'{instance_type}' is not a SageMaker instance type like 'ml.m5.xlarge'")
        return value


class Tags(_Strict):
    team: str = Field(
        min_length=1,
        max_length=128,
        description="The owning team, tagged `trainstack:team` on every resource and every training job.",
    )
    cost_centre: str = Field(
        min_length=1,
        max_length=128,
        description="The cost centre, tagged `trainstack:cost-centre` on every resource and every training job.",
    )
    extra: dict[str, str] = Field(
        {}, description="More tags on every resource and job; names starting with `aws:` or `trainstack:` are refused."
    )


class StudioAuthMode(StrEnum):
    IAM = "IAM"
    SSO = "SSO"


class StudioConfig(_Strict):
    """A SageMaker Studio domain in the platform's VPC, for users who work in Studio instead of the notebook."""

    auth_mode: StudioAuthMode = Field(
        StudioAuthMode.IAM,
        description="How users sign in: IAM (presigned URLs for IAM principals) or SSO (IAM Identity Center, whose "
        "user names must equal the profile names).",
    )
    user_profiles: list[Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")]] = Field(
        min_length=1,
        description="One user profile per name, each with its own execution role under the notebook's guard rails.",
    )

    @field_validator("user_profiles")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"user profile names must be distinct; repeated: {', '.join(repeated)}")
        return value


class BudgetConfig(_Strict):
    """A monthly AWS Budgets cost budget over the costs tagged with this environment's platform tags."""

    monthly_usd: float = Field(gt=0, description="The budgeted monthly cost in US dollars.")
    alert_percentages: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        [80, 100],
        min_length=1,
        description="Notify when the month's actual cost passes each of these percentages of monthly_usd.",
    )
    notification_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        [],
        description="Who AWS Budgets emails at each threshold; training.notification_emails when empty.",
    )


class EnvironmentConfig(_Strict):
    """One deployable environment: an account, a region and every platform knob."""

    name: str = Field(
        pattern=_NAME_PATTERN,
        description=(
            "Lowercase letters, digits and dashes, equal to the file's name; the CDK Stage id (`cdk deploy "
            "'<name>/*'`)."
        ),
    )
    account: str = Field(pattern=_ACCOUNT_PATTERN, description="The 12-digit AWS account the environment deploys to.")
    region: str = Field(
        pattern=_REGION_PATTERN,
        description=(
            "The AWS region, e.g. `us-west-2`; the DLC registry and ARNs follow it (`aws-cn` and `aws-us-gov`"
            " partitions too)."
        ),
    )
    # True only for the environment that runs on the embedded AWS (moto + adapters).
    embedded: bool = Field(
        False, description="`true` only for the environment that runs on the embedded AWS (`local`)."
    )
    prefix: str = Field(
        pattern=_NAME_PATTERN,
        description=(
            "Stack and resource name prefix; bucket names `<prefix>-data-<account>-<region>` must fit 63 characters."
        ),
    )
    tags: Tags = Field(description="Tagged on every resource and every training job, with `trainstack:environment`.")
    permissions_boundary_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]+$",
        description=(
            "A customer managed policy applied as the permissions boundary of every role the platform "
            "creates; when none is named, an environment deployed to an account gets the platform's own "
            "`<prefix>-permissions-boundary` (`trainstack/platform/constructs/permissions_boundary.py`)."
        ),
    )
    network: NetworkConfig = Field(NetworkConfig(), description="Where training jobs and the notebook run.")
    image: ImageConfig = Field(ImageConfig(), description="The training image.")
    notebook: NotebookConfig = Field(NotebookConfig(), description="The notebook instance.")
    storage: StorageConfig = Field(
        StorageConfig(), description="Lifecycle of the data, artifacts and access-log buckets."
    )
    training: TrainingConfig = Field(TrainingConfig(), description="Defaults and limits of every training run.")
    quotas: EmbeddedQuotas | None = Field(
        None, description="Embedded only: the SageMaker quotas the embedded Service Quotas serves."
    )
    studio: StudioConfig | None = Field(
        None,
        description="A SageMaker Studio domain with user profiles under the notebook's guard rails; none when absent.",
    )
    budget: BudgetConfig | None = Field(
        None, description="A monthly cost budget on the platform's tags; none when absent."
    )

    @model_validator(mode="before")
    @classmethod
    def _job_name_prefix_defaults_to_prefix(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("prefix"), str):
            return data
        training = data.get("training", {})
        if isinstance(training, dict) and "job_name_prefix" not in training:
            prefix = data["prefix"]
            if len(prefix) > MAX_JOB_NAME_PREFIX_LENGTH:
                raise ValueError(
                    f"training.job_name_prefix defaults to prefix '{prefix}', which is longer than the "
                    f"{MAX_JOB_NAME_PREFIX_LENGTH} characters a job-name prefix may have (job names allow 63 with the "
                    "start time and execution); set training.job_name_prefix"
                )
            data = {**data, "training": {**training, "job_name_prefix": prefix}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _s3_prefix_list_of_the_region(cls, data: Any) -> Any:
        """Fill `network.s3_prefix_list_id` from S3_PREFIX_LISTS; refuse one that is not the region's."""
        if not isinstance(data, dict) or not isinstance(data.get("network"), dict):
            return data
        network, known = data["network"], S3_PREFIX_LISTS.get(str(data.get("region")))
        given = network.get("s3_prefix_list_id")
        if known and isinstance(given, str) and given.startswith("pl-") and given != known:
            raise ValueError(
                f"network.s3_prefix_list_id {given} is not com.amazonaws.{data['region']}.s3 ({known}); "
                "remove it to use the region's, or correct it"
            )
        if known and not given and network.get("mode", NetworkMode.NONE.value) != NetworkMode.NONE.value:
            data = {**data, "network": {**network, "s3_prefix_list_id": known}}
        return data

    @model_validator(mode="after")
    def _coherent(self) -> EnvironmentConfig:
        if self.notebook.enabled and self.network.mode is NetworkMode.NONE:
            raise ValueError(
                "notebook.enabled needs network.mode 'create' or 'existing': the notebook runs "
                "without direct internet access, which SageMaker only allows inside a VPC"
            )
        if self.studio is not None and (self.network.mode is NetworkMode.NONE or self.embedded):
            raise ValueError(
                "studio needs network.mode 'create' or 'existing' (the domain is VPC only) and a real account "
                "(the embedded AWS cannot create a domain)"
            )
        if self.quotas is not None and not self.embedded:
            raise ValueError("quotas are served by the embedded AWS only; set embedded: true or remove them")
        longest = f"{self.prefix}-access-logs-{self.account}-{self.region}"
        if len(longest) > 63:
            raise ValueError(
                f"prefix '{self.prefix}' is too long: bucket names like '{longest}' exceed S3's 63 characters"
            )
        self._mlflow_server_is_the_environments()
        if self.embedded and self.image.mode is ImageMode.ASSET:
            raise ValueError("image.mode 'asset' needs Docker, which the embedded AWS does not have; use 'dlc'")
        if self.image.mode is not ImageMode.REPOSITORY and not self.image.uri:
            # The image must already hold training_code/requirements.txt (image_compatibility.py says why).
            check_image(
                mode=self.image.mode.value,
                repository=self.image.dlc_repository,
                tag=self.image.dlc_tag,
                embedded=self.embedded,
                internet=self.network.mode is NetworkMode.NONE,
            )
        return self

    def _mlflow_server_is_the_environments(self) -> None:
        """The execution role's credentials reach only a server of the environment's own account and region:
        an ARN elsewhere would send every run's parameters and metrics out of the environment."""
        arn = self.training.mlflow_tracking_server_arn
        if arn is None:
            return
        match = re.match(MLFLOW_TRACKING_SERVER_ARN_PATTERN, arn)
        assert match is not None  # the field's pattern already held
        partition, region, account = match.group(1, 2, 3)
        expected = ResourceNames.of(self).partition
        if (partition, region, account) != (expected, self.region, self.account):
            raise ValueError(
                f"training.mlflow_tracking_server_arn: expected a tracking server of this environment "
                f"(arn:{expected}:sagemaker:{self.region}:{self.account}:mlflow-tracking-server/<name>), got {arn}"
            )

    @property
    def image_uri(self) -> str | None:
        """The image URI when known at synth time (`repository` mode resolves it in the image stack)."""
        if self.image.uri:
            return self.image.uri
        if self.image.mode is ImageMode.DLC:
            return self.image.dlc_uri(self.region)
        return None

    @property
    def allowed_image_repositories(self) -> list[str]:
        """Repository URIs (no tag) a run's `image` may name: the platform's ECR repository (`repository` mode),
        the default DLC's repository in `dlc` mode, and `image.allowed_dlc_repositories` in the region's DLC
        registry."""
        names = ResourceNames.of(self)
        dlc = [
            *([self.image.dlc_repository] if self.image.mode is ImageMode.DLC else []),
            *self.image.allowed_dlc_repositories,
        ]
        registry = self.image.dlc_registry(self.region)
        # The platform's own repository exists only in `repository` mode (trainstack/platform/image_stack.py).
        own = [f"{self.account}.dkr.ecr.{self.region}.{registry.split('.', 4)[4]}/{names.repository}"]
        if self.image.mode is not ImageMode.REPOSITORY:
            own = []
        return [*own, *dict.fromkeys(f"{registry}/{repository}" for repository in dlc)]

    @property
    def platform_tags(self) -> dict[str, str]:
        """The `trainstack:*` tags: every training job must carry them with these values (IAM requires it)."""
        return {key: value for key, value in self.all_tags.items() if key.startswith("trainstack:")}

    @property
    def all_tags(self) -> dict[str, str]:
        return {
            "trainstack:environment": self.name,
            "trainstack:team": self.tags.team,
            "trainstack:cost-centre": self.tags.cost_centre,
            **self.tags.extra,
        }

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        """Old names in RENAMED_FIELDS still work, with a RenamedFieldWarning naming the new one. Defined last:
        pydantic runs `before` validators last-defined first, so the others see the new names."""
        return apply_renames(data, RENAMED_FIELDS) if isinstance(data, dict) else data


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling against config/README.md)"
    elif error["type"] == "missing":
        message = "required field is missing"
    elif "input" in error and error["type"] not in ("model_type",):
        message = f"{message} (got {error['input']!r})"
    return f"  {field}: {message}"


def parse_environment(data: Any, source: str) -> EnvironmentConfig:
    """Validate already-loaded YAML data; `source` names it in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RenamedFieldWarning)
            config = EnvironmentConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"{source}: invalid environment configuration\n{lines}") from None
    for warning in caught:
        # Named by the file, as errors are.
        message = f"{source}: {warning.message}" if warning.category is RenamedFieldWarning else warning.message
        warnings.warn(message, warning.category, stacklevel=2)
    # The defaults must pass the rules a run input passes (the rulebook, as the state machine's own Validate
    # evaluates them): a default no run could send would fail every run. Imported here: the Validate
    # expression is built from this module's models.
    from trainstack.platform.constructs.training_run_input import config_problems

    problems = config_problems(config)
    if problems:
        lines = "\n".join(f"  {_config_field(problem)}" for problem in problems)
        raise ConfigError(f"{source}: the environment's defaults break the run-input rules\n{lines}")
    return config


# Where a run-input field's default comes from in the config file.
_CONFIG_FIELDS = {"tags": "tags.extra", "input": "training"}


def _config_field(problem: str) -> str:
    """A run-input problem (`environment.X: ...`) named by its config field (`training.environment.X: ...`)."""
    head = problem.split(".", 1)[0].split(":", 1)[0]
    return f"{_CONFIG_FIELDS.get(head, 'training.' + head)}{problem[len(head) :]}"


def app_dir() -> Path:
    """The CDK app a command serves (its cdk.json, config/, the embedded AWS's .local-aws/): the working
    directory, where `cdk` itself looks for cdk.json. The library never assumes a checkout around it."""
    return Path.cwd()


def default_config_dir() -> Path:
    """Where environments named without a path live: $TRAINSTACK_CONFIG_DIR, else the app's `config/`."""
    configured = os.environ.get(CONFIG_DIR_VARIABLE)
    return Path(configured).resolve() if configured else app_dir() / "config"


def load_environment(name_or_path: str | Path, config_dir: Path | None = None) -> EnvironmentConfig:
    """Load an environment from any YAML path, or by name from `config_dir` (default `default_config_dir()`)."""
    config_dir = config_dir or default_config_dir()
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(environment_names(config_dir)) or "none"
        raise ConfigError(f"{path}: no such environment file (known environments: {known})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = parse_environment(data, str(path))
    if config.name != path.stem:
        raise ConfigError(f"{path}: name: must equal the file name '{path.stem}', got {config.name!r}")
    return config


def environment_names(config_dir: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (config_dir or default_config_dir()).glob("*.yaml"))


def load_all(config_dir: Path | None = None) -> list[EnvironmentConfig]:
    configs = [load_environment(name, config_dir) for name in environment_names(config_dir)]
    check_job_name_prefixes(configs)
    return configs


def load_selected(name_or_path: str | Path | None, config_dir: Path | None = None) -> list[EnvironmentConfig]:
    """What `cdk synth [-c env=<name>]` builds: every environment, or the selected one checked against all the
    others, so a job-name prefix that nests with another environment's is refused even when only it is built."""
    config_dir = config_dir or default_config_dir()
    configs = load_all(config_dir)
    if name_or_path is None:
        return configs
    config = load_environment(name_or_path, config_dir)
    check_job_name_prefixes([config, *(other for other in configs if other.name != config.name)])
    return [config]


def nested_job_name_prefixes(config: EnvironmentConfig, config_dir: Path | None = None) -> dict[str, str]:
    """Other environments' job-name prefixes inside this one's (`trainstack-dev` inside `trainstack-`), by
    environment name. Read from the YAML without validating it: validating runs this environment's checks again."""
    mine = config.training.job_name_prefix + "-"
    found = {}
    for path in sorted((config_dir or default_config_dir()).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("name") == config.name:
            continue
        training = data.get("training") if isinstance(data.get("training"), dict) else {}
        prefix = training.get("job_name_prefix", data.get("prefix"))
        if isinstance(prefix, str) and prefix.startswith(mine):
            found[str(data.get("name", path.stem))] = prefix
    return found


def check_job_name_prefixes(configs: list[EnvironmentConfig]) -> None:
    """No two environments of one account (and region) may reach each other's jobs.

    IAM grants `training-job/<job_name_prefix>-*`; that pattern also covers another environment's jobs when
    its `<job_name_prefix>-` starts with this one's (`trainstack-dev-` and `trainstack-dev-eu-...`).
    """
    for config in configs:
        for other in configs:
            if other is config or (other.account, other.region) != (config.account, config.region):
                continue
            mine, theirs = config.training.job_name_prefix + "-", other.training.job_name_prefix + "-"
            if theirs.startswith(mine):
                raise ConfigError(
                    f"{other.name}: training.job_name_prefix '{other.training.job_name_prefix}' is inside environment "
                    f"'{config.name}''s job names ('{mine}*') in account {config.account} {config.region}: the two "
                    "environments could stop and tag each other's jobs; give each a prefix that does not start "
                    "with the other's"
                )


class ResourceNames(BaseModel):
    """Names every part of the platform agrees on: stacks, buckets, repository, role, state machine.

    Bucket names carry account and region because S3 names are global; the CLI, the notebooks and the
    embedded AWS find resources by these names without reading stack outputs.
    """

    model_config = ConfigDict(frozen=True)

    prefix: str
    account: str
    region: str

    @classmethod
    def of(cls, config: EnvironmentConfig) -> ResourceNames:
        return cls(prefix=config.prefix, account=config.account, region=config.region)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """A literal ARN in this environment (policies use these so cdk-nag findings read plainly)."""
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    def bucket_arn(self, bucket: str, objects: str | None = None) -> str:
        suffix = f"/{objects}" if objects is not None else ""
        return self.arn("s3", f"{bucket}{suffix}", region=False, account=False)

    def stack(self, part: str) -> str:
        return f"{self.prefix}-{part}"

    def _bucket(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}-{self.account}-{self.region}"

    @property
    def data_bucket(self) -> str:
        return self._bucket("data")

    @property
    def artifacts_bucket(self) -> str:
        return self._bucket("artifacts")

    @property
    def access_log_bucket(self) -> str:
        return self._bucket("access-logs")

    @property
    def repository(self) -> str:
        return f"{self.prefix}/training"

    @property
    def execution_role(self) -> str:
        return f"{self.prefix}-sagemaker-execution"

    @property
    def notebook_role(self) -> str:
        return f"{self.prefix}-notebook"

    @property
    def notebook(self) -> str:
        return f"{self.prefix}-notebook"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-training"

    @property
    def notification_topic(self) -> str:
        return f"{self.prefix}-training-events"
