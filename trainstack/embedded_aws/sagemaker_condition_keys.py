"""SageMaker's IAM condition keys for CreateTrainingJob, computed from the request as SageMaker does.

Key names from the Service Authorization Reference, "Actions, resources, and condition keys for Amazon
SageMaker" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html),
actions CreateTrainingJob and UpdateTrainingJob. Keys whose request field is absent are left out of the
context (so `Null` and `...IfExists` behave as on AWS). Not computed (the platform sets none of them): the
FileSystem* keys, ImageArns/ImageVersionArns.
"""

from __future__ import annotations

from typing import Any

from .iam_policy_evaluation import ContextValue


def tag_context(tags: list[dict[str, str]] | dict[str, str] | None) -> dict[str, ContextValue]:
    """`aws:RequestTag/<key>` per tag and `aws:TagKeys` (multi-valued), for any tagging request."""
    pairs = tags.items() if isinstance(tags, dict) else [(t["Key"], t["Value"]) for t in tags or []]
    context: dict[str, ContextValue] = {f"aws:RequestTag/{key}": value for key, value in pairs}
    if context:
        context["aws:TagKeys"] = [key for key, _ in pairs]
    return context


def create_training_job_context(request: dict[str, Any]) -> dict[str, ContextValue]:
    resources = request.get("ResourceConfig") or {}
    vpc = request.get("VpcConfig") or {}
    output = request.get("OutputDataConfig") or {}
    instance_types = [resources["InstanceType"]] if resources.get("InstanceType") else []
    instance_types += [g["InstanceType"] for g in resources.get("InstanceGroups") or [] if g.get("InstanceType")]
    context: dict[str, ContextValue] = {
        "sagemaker:InterContainerTrafficEncryption": bool(request.get("EnableInterContainerTrafficEncryption")),
        "sagemaker:NetworkIsolation": bool(request.get("EnableNetworkIsolation")),
    }
    if instance_types:
        context["sagemaker:InstanceTypes"] = instance_types
    if vpc.get("Subnets"):
        context["sagemaker:VpcSubnets"] = list(vpc["Subnets"])
    if vpc.get("SecurityGroupIds"):
        context["sagemaker:VpcSecurityGroupIds"] = list(vpc["SecurityGroupIds"])
    if resources.get("VolumeKmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = resources["VolumeKmsKeyId"]
    if output.get("KmsKeyId"):
        context["sagemaker:OutputKmsKey"] = output["KmsKeyId"]
    runtime = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    if runtime is not None:
        context["sagemaker:MaxRuntimeInSeconds"] = int(runtime)
    context.update(_ceiling_keys(request))
    context.update(tag_context(request.get("Tags")))
    return context


def update_training_job_context(request: dict[str, Any]) -> dict[str, ContextValue]:
    """UpdateTrainingJob's keys from its request: a keep-alive change and a remote-debug switch. (It names no
    instance type, so `sagemaker:InstanceTypes` is absent, as an update cannot change it.)"""
    return _ceiling_keys(request)


def _ceiling_keys(request: dict[str, Any]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    keep_alive = (request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
    if keep_alive is not None:
        context["sagemaker:KeepAlivePeriod"] = int(keep_alive)
    remote_debug = (request.get("RemoteDebugConfig") or {}).get("EnableRemoteDebug")
    if remote_debug is not None:
        context["sagemaker:EnableRemoteDebug"] = bool(remote_debug)
    return context
