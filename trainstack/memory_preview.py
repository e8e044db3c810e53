"""The training script's memory plan (training_code/memory_plan.py) before a run starts: for
`trainstack run --dry-run` and `tn.Estimator.fit`, from the hyperparameters and the model's config.json in S3
(one small object; never the weights)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from training_code.memory_plan import NOTHING_FITS, plan, run_from_hyperparameters


def decoded(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameter values as the toolkit decodes them (CreateTrainingJob carries JSON-encoded strings)."""
    values: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        try:
            values[name] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            values[name] = value
    return values


def memory_plan_text(
    hyperparameters: Mapping[str, Any],
    instance_type: str | None,
    instance_count: int | None,
    model_channel_uri: str | None,
    s3: Any,
    model_bucket: str | None = None,
) -> str:
    """The plan as the job would print it, with what would fit when it does not; or why there is none."""
    values = decoded(hyperparameters)
    uri = values.get("model_s3_uri") or model_channel_uri
    if not uri:
        return "memory plan: none (no model_s3_uri and no model channel to read config.json from)"
    if not str(uri).startswith("s3://"):
        if not model_bucket:
            return f"memory plan: none (model_s3_uri={uri!r} is a bare prefix and MODEL_S3_BUCKET is not set)"
        uri = f"s3://{model_bucket}/{str(uri).lstrip('/')}"
    bucket, _, prefix = str(uri).removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/config.json".lstrip("/")
    try:
        config = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.ClientError as error:
        return f"memory plan: none (cannot read s3://{bucket}/{key}: {error.response['Error']['Code']})"
    if not instance_type:
        return "memory plan: none (the environment's default instance type is not known here)"
    try:
        result = plan(config, run_from_hyperparameters(values, instance_type, instance_count or 1))
    except KeyError as missing:
        return f"memory plan: none (config.json of model_type {config.get('model_type')!r} has no {missing})"
    if result.fits:
        return result.render()
    options = "; ".join(result.what_would_fit(config) or [NOTHING_FITS])
    return f"{result.render()}\n  does not fit: the job would fail before its download. What would fit: {options}"


def memory_plan_for_request(request: Mapping[str, Any], s3: Any) -> str:
    """The plan for a CreateTrainingJob request (the one `--dry-run` shows)."""
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request.get("InputDataConfig", [])}
    resources = request.get("ResourceConfig", {})
    return memory_plan_text(
        request.get("HyperParameters", {}),
        resources.get("InstanceType"),
        resources.get("InstanceCount"),
        channels.get("model"),
        s3,
        (request.get("Environment") or {}).get("MODEL_S3_BUCKET"),
    )
