"""SageMaker's own rules for CreateTrainingJob, enforced server-side as SageMaker does.

botocore's `ParamValidator` checks types, required members and minimums only; it skips maximum lengths,
patterns and enums (SageMaker checks those on its side). This module walks botocore's SageMaker model
generically (no hand-written copy of it): every member's `min`/`max` (string length, list and map size),
`pattern` and `enum`, and required members, and words each violation the way SageMaker's Coral front end does:

    1 validation error detected: Value 'retrain(v2)' at 'tags.1.member.value' failed to satisfy constraint:
    Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$

(paths in lowerCamelCase, list items as `<list>.<1-based index>.member`, map constraints as "Map value/keys
must satisfy constraint: [...]", values as Java's toString renders them). The model's patterns are Java
regular expressions (`\\p{L}`, `\\p{Alnum}`, lookbehinds); Python's `re` lacks Unicode property classes, so
they are matched with the `regex` package, which understands them as Java does.

Then the documented rules the model does not carry (each cites where AWS says so in the README):
no `VolumeKmsKeyId` on an instance type with local storage (trainstack/data/instance_storage.json),
keep-alive at most 3600 s and never with spot, `MaxWaitTimeInSeconds` only with spot and then at least
`MaxRuntimeInSeconds`, no user tag key starting with `aws:`, `MaxRuntimeInSeconds` within the account's
"Longest run time for a training job". Last, what the embedded AWS cannot run (say so, never pretend).
"""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath
from typing import Any

import botocore.session
import regex
from botocore.model import Shape
from botocore.validate import ParamValidator

from trainstack.config import MAX_KEEP_ALIVE_SECONDS
from trainstack.instance_storage import has_local_storage

from .json_protocol import AwsError

VALIDATION = "ValidationException"
# User tag keys may not use AWS's reserved prefix (Tagging best practices; SageMaker AddTags/CreateTrainingJob).
RESERVED_TAG_PREFIX = "aws:"
# The container's SageMaker folder: each embedded host has its own stand-in for it (toolkit_host.py).
OPT_ML = "/opt/ml"
# TensorBoardOutputConfig.LocalPath when the request omits it (botocore's member documentation).
TENSORBOARD_DEFAULT_LOCAL_PATH = "/opt/ml/output/tensorboard"


@cache
def _input_shape(operation: str) -> Shape:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).input_shape


# Java's `.` (no DOTALL) matches anything but its line terminators; Python's only leaves out "\n".
_JAVA_DOT = r"[^\n\r\u0085\u2028\u2029]"


def java_pattern(pattern: str) -> str:
    """A Java pattern for the `regex` package, `.` outside character classes as Java reads it.

    The HyperParameters map's keys and values are `.*`: Java refuses a line break, a carriage return, U+0085,
    U+2028 or U+2029 in them, so SageMaker does; Python's `.` would let all but "\n" through.
    """
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == ".":
            out.append(_JAVA_DOT)
            continue
        out.append(char)
    return "".join(out)


@cache
def _compiled(pattern: str) -> regex.Pattern[str]:
    # SageMaker matches the whole value; botocore's model stores the pattern without anchors.
    return regex.compile(java_pattern(pattern), regex.VERSION1)


def _wire_name(member: str) -> str:
    """SageMaker names members in messages in lowerCamelCase: HyperParameters -> hyperParameters."""
    return member[:1].lower() + member[1:]


def java_string(value: Any) -> str:
    """A value as Java's toString renders it in SageMaker's messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={java_string(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_string(item) for item in value) + "]"
    return str(value)


def _constraints(shape: Shape, value: Any) -> list[str]:
    """The constraints of `shape` that `value` breaks, in SageMaker's words."""
    broken: list[str] = []
    metadata = shape.metadata
    if shape.type_name in ("string", "list", "map") and isinstance(value, (str, list, dict)):
        if "max" in metadata and len(value) > metadata["max"]:
            broken.append(f"Member must have length less than or equal to {metadata['max']}")
        if "min" in metadata and len(value) < metadata["min"]:
            broken.append(f"Member must have length greater than or equal to {metadata['min']}")
    if shape.type_name in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        if "max" in metadata and value > metadata["max"]:
            broken.append(f"Member must have value less than or equal to {metadata['max']}")
        if "min" in metadata and value < metadata["min"]:
            broken.append(f"Member must have value greater than or equal to {metadata['min']}")
    if isinstance(value, str):
        if "pattern" in metadata and not _compiled(metadata["pattern"]).fullmatch(value):
            broken.append(f"Member must satisfy regular expression pattern: ^{metadata['pattern']}$")
        if shape.enum and value not in shape.enum:
            broken.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    return broken


def _map_member_constraints(shape: Shape) -> list[str]:
    """A map's key/value constraints as SageMaker lists them: every one, whether broken or not."""
    listed: list[str] = []
    metadata = shape.metadata
    if "max" in metadata:
        listed.append(f"Member must have length less than or equal to {metadata['max']}")
    if "min" in metadata:
        listed.append(f"Member must have length greater than or equal to {metadata['min']}")
    if "pattern" in metadata:
        listed.append(f"Member must satisfy regular expression pattern: {metadata['pattern']}")
    return listed


def model_violations(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Every violation of botocore's model in `value`, as SageMaker's "Value ... at ..." sentences."""
    found: list[str] = []
    where = path or "request"
    for constraint in _constraints(shape, value):
        found.append(f"Value {_quoted(value)} at '{where}' failed to satisfy constraint: {constraint}")
    if shape.type_name == "structure" and isinstance(value, dict):
        for required in shape.required_members:
            if value.get(required) is None:
                at = f"{path}.{_wire_name(required)}" if path else _wire_name(required)
                found.append(f"Value null at '{at}' failed to satisfy constraint: Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                at = f"{path}.{_wire_name(name)}" if path else _wire_name(name)
                found.extend(model_violations(member, value[name], at))
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value, start=1):
            found.extend(model_violations(shape.member, item, f"{where}.{index}.member"))
    elif shape.type_name == "map" and isinstance(value, dict):
        bad_keys = any(_constraints(shape.key, key) for key in value)
        bad_values = any(_constraints(shape.value, item) for item in value.values() if isinstance(item, str))
        # SageMaker reports a map once per side, quoting the whole map and listing that side's constraints.
        for bad, side, member in ((bad_keys, "keys", shape.key), (bad_values, "value", shape.value)):
            if bad:
                listed = ", ".join(_map_member_constraints(member))
                found.append(
                    f"Value {_quoted(value)} at '{where}' failed to satisfy constraint: "
                    f"Map {side} must satisfy constraint: [{listed}]"
                )
    return found


def _quoted(value: Any) -> str:
    return "null" if value is None else f"'{java_string(value)}'"


def _type_problems(request: dict[str, Any], shape: Shape) -> list[str]:
    """Wrong types and unknown members (botocore's checks), minus what the model walk reports in AWS's words."""
    # JSON null is an absent member on AWS's wire: the model walk reports it as "Member must not be null".
    report = ParamValidator().validate(_without_nulls(request), shape)
    if not report.has_errors():
        return []
    return [
        line
        for line in report.generate_report().splitlines()
        if line and not line.startswith(("Parameter validation failed", "Missing required parameter"))
    ]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _raise_if_any(problems: list[str]) -> None:
    if problems:
        count = len(problems)
        noun = "validation error" if count == 1 else "validation errors"
        raise AwsError(VALIDATION, f"{count} {noun} detected: " + "; ".join(problems))


def validate_create_training_job(request: dict[str, Any], longest_run_seconds: int | None) -> None:
    """Refuse what SageMaker refuses, with SageMaker's error; `request` has SageMaker's defaults applied."""
    shape = _input_shape("CreateTrainingJob")
    # Both at once, as SageMaker reports every violation of one request; the walk skips values of a wrong type.
    _raise_if_any(model_violations(shape, request) + _type_problems(request, shape))
    _documented_limits(request, longest_run_seconds)
    _unsupported_here(request)


def _documented_limits(request: dict[str, Any], longest_run_seconds: int | None) -> None:
    resources = request.get("ResourceConfig") or {}
    stopping = request.get("StoppingCondition") or {}
    spot = bool(request.get("EnableManagedSpotTraining"))
    instance_type = resources.get("InstanceType")
    if resources.get("VolumeKmsKeyId") and instance_type and has_local_storage(instance_type):
        # botocore's ResourceConfig.VolumeKmsKeyId: "You can't request a VolumeKmsKeyId when using an instance type
        # with local storage." AWS's exact message text is not published; this one says the same, naming the type.
        raise AwsError(
            VALIDATION,
            f"Invalid VolumeKmsKeyId. You can't request a VolumeKmsKeyId when using an instance type with local "
            f"storage ({instance_type}): its NVMe instance storage is encrypted by a hardware module on the instance",
        )
    keep_alive = resources.get("KeepAlivePeriodInSeconds", 0)
    if keep_alive > MAX_KEEP_ALIVE_SECONDS:
        raise AwsError(
            VALIDATION,
            f"1 validation error detected: Value '{keep_alive}' at 'resourceConfig.keepAlivePeriodInSeconds' failed "
            f"to satisfy constraint: Member must have value less than or equal to {MAX_KEEP_ALIVE_SECONDS}",
        )
    if keep_alive and spot:
        raise AwsError(
            VALIDATION,
            "Invalid KeepAlivePeriodInSeconds. Warm pools are not supported with managed spot training "
            "(EnableManagedSpotTraining is true)",
        )
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    max_runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    if max_wait is not None and not spot:
        raise AwsError(
            VALIDATION,
            "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true",
        )
    if spot and (max_wait is None or max_wait < max_runtime):
        raise AwsError(
            VALIDATION,
            "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to MaxRuntimeInSeconds",
        )
    for index, tag in enumerate(request.get("Tags") or [], start=1):
        if str(tag.get("Key", "")).lower().startswith(RESERVED_TAG_PREFIX):
            raise AwsError(
                VALIDATION,
                f"1 validation error detected: Value '{tag['Key']}' at 'tags.{index}.member.key' failed to satisfy "
                "constraint: User-defined tag keys cannot start with 'aws:' (the prefix is reserved for AWS use)",
            )
    if longest_run_seconds is not None and max_runtime > longest_run_seconds:
        raise AwsError(
            VALIDATION,
            f"Invalid MaxRuntimeInSeconds: {max_runtime} exceeds the account-level service limit 'Longest run time "
            f"for a training job' of {longest_run_seconds} seconds. Please use AWS Service Quotas to request an "
            "increase for this quota.",
        )


def _unsupported_here(request: dict[str, Any]) -> None:
    """Valid on AWS but not runnable by the embedded AWS: refused with a sentence that says so."""
    resources = request.get("ResourceConfig")
    if not resources or not resources.get("InstanceType"):
        raise AwsError(
            VALIDATION,
            "ResourceConfig with InstanceType is required by the embedded AWS (serverless and instance-group "
            "jobs are not supported here)",
        )
    if resources.get("InstanceGroups"):
        raise AwsError(VALIDATION, "ResourceConfig.InstanceGroups: not supported by the embedded AWS")
    tensorboard = request.get("TensorBoardOutputConfig")
    if tensorboard:
        local = PurePosixPath(tensorboard.get("LocalPath") or TENSORBOARD_DEFAULT_LOCAL_PATH)
        # Valid on AWS anywhere in the container; here only /opt/ml maps onto a host's folder.
        if not local.is_relative_to(OPT_ML) or local == PurePosixPath(OPT_ML):
            raise AwsError(
                VALIDATION,
                f"TensorBoardOutputConfig.LocalPath {str(local)!r}: the embedded AWS supports only a folder under "
                f"{OPT_ML}/ (default {TENSORBOARD_DEFAULT_LOCAL_PATH})",
            )
        if not tensorboard["S3OutputPath"].startswith("s3://"):
            raise AwsError(
                VALIDATION,
                "TensorBoardOutputConfig.S3OutputPath: only s3:// URIs are supported by the embedded AWS",
            )
    for channel in request.get("InputDataConfig") or []:
        source = channel["DataSource"].get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise AwsError(
                VALIDATION,
                f"InputDataConfig.{channel['ChannelName']}: only S3DataSource with S3DataType S3Prefix is "
                "supported by the embedded AWS",
            )
