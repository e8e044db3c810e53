"""SageMaker's IAM condition keys for CreateTrainingJob, computed from the request as SageMaker does.

Key names from the Service Authorization Reference, "Actions, resources, and condition keys for Amazon
SageMaker" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html),
action CreateTrainingJob. Keys whose request field is absent are left out of the context (so `Null` and
`...IfExists` behave as on AWS). Not computed (the platform sets none of them): the FileSystem* keys,
ImageArns/ImageVersionArns, EnableRemoteDebug.
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
    if resources.get("KeepAlivePeriodInSeconds") is not None:
        context["sagemaker:KeepAlivePeriod"] = int(resources["KeepAlivePeriodInSeconds"])
    context.update(tag_context(request.get("Tags")))
    return context
