"""Gap: moto runs a custom resource by invoking its Lambda in Docker, and waits for a reply that never comes.

Offline there is no Docker and no Lambda runtime, so a stack with CDK's `AwsCustomResource` (type `Custom::AWS`)
would stay CREATE_IN_PROGRESS. Its provider's whole job is one SDK call per lifecycle event, written in the
resource's properties (`Create`, `Update`, `Delete`: JSON with service, action, parameters, physicalResourceId,
ignoreErrorCodesMatching). We make that call as the provider does: with the credentials of the provider
function's own role (assumed through the embedded STS), so the embedded IAM evaluates it against that role's
policies, and a call its policy does not allow fails the deploy as it fails the stack on AWS.

What the provider does and we do too (aws-cdk-lib `custom-resources/aws-custom-resource` handler):
- Create runs `Create` (or `Update` when there is no `Create`); Update runs `Update`; Delete runs `Delete`,
  with the properties of the last successful create or update; an absent call does nothing.
- `ignoreErrorCodesMatching` is a regular expression searched in the error's name; a matching error is no error.
- The physical id is `physicalResourceId.id`, else the value at `physicalResourceId.responsePath` of the
  flattened response, else (on create) the request id; the flattened response is what `Fn::GetAtt` reads.
- Parameters written as "TRUE:BOOLEAN"/"FALSE:BOOLEAN" are booleans, "PHYSICAL:RESOURCEID:" the physical id.
Not modelled: `outputPaths` (every field is returned), `assumedRoleArn`, `installLatestAwsSdk` (the embedded
botocore is the SDK), and a failed call surfaces as the ExecuteChangeSet error rather than as a CREATE_FAILED
event (moto has no failed resource state); its message is CloudFormation's for a FAILED custom resource.
moto's ExecuteChangeSet creates added resources in template order; a custom resource's `DependsOn` (its
policy) is created first here. Other `Custom::` types keep moto's behaviour.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError
from moto.awslambda.utils import get_backend as get_lambda_backend
from moto.cloudformation import custom_model
from moto.cloudformation.exceptions import ValidationError

from .assumed_role_credentials import LAMBDA, Assumer, role_client

RESOURCE_TYPE = "Custom::AWS"
# The provider function's session name is Lambda's (the function name); this one says who called in denials.
SESSION_NAME = "AwsCustomResourceProvider"
_SDK_V3_PACKAGE = "@aws-sdk/client-"


class CustomResourceFailed(ValidationError):
    """CloudFormation's status reason for a custom resource whose provider answered FAILED."""

    def __init__(self, logical_id: str, message: str, request_id: str) -> None:
        super().__init__(
            logical_id,
            message=f"{logical_id}: Received response status [FAILED] from custom resource. "
            f"Message returned: {message} (RequestId: {request_id})",
        )


@functools.cache
def _boto_service_names() -> dict[str, str]:
    """SDK v3 package suffix ("cloudwatch-logs") and SDK v2 class name ("CloudWatchLogs") -> boto3 name ("logs"):
    both derive from the service model's serviceId, as botocore's own names do."""
    session = botocore.session.get_session()
    names: dict[str, str] = {}
    for service in session.get_available_services():
        service_id = session.get_service_model(service).metadata["serviceId"]
        names[service_id.lower().replace(" ", "-")] = service
        names[service_id.replace(" ", "").lower()] = service
    return names


def boto_service(sdk_service: str) -> str:
    key = sdk_service.removeprefix(_SDK_V3_PACKAGE).lower()
    try:
        return _boto_service_names()[key]
    except KeyError:
        raise ValueError(f"AwsCustomResource: unknown SDK service {sdk_service!r}") from None


def boto_method(action: str) -> str:
    """ "CreateLogGroup", "createLogGroup" or "CreateLogGroupCommand" -> "create_log_group"."""
    operation = action.removesuffix("Command")
    return xform_name(operation[:1].upper() + operation[1:])


def _decode(value: Any, physical_id: str | None) -> Any:
    if isinstance(value, dict):
        return {key: _decode(item, physical_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item, physical_id) for item in value]
    if value == "TRUE:BOOLEAN":
        return True
    if value == "FALSE:BOOLEAN":
        return False
    if value == "PHYSICAL:RESOURCEID:" and physical_id is not None:
        return physical_id
    return value


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """The provider's flattening of a response: nested keys joined with dots, list items by index."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= flatten(item, f"{prefix}.{key}" if prefix else str(key))
    return flat


class AwsSdkCallResource(custom_model.CustomModel):
    """One `Custom::AWS` resource: its SDK calls made as the provider's role, synchronously."""

    def __init__(self, account_id: str, region_name: str, logical_id: str, properties: dict[str, Any]) -> None:
        super().__init__(region_name, str(uuid.uuid4()), logical_id, logical_id)
        self.account_id = account_id
        self.properties = properties

    @property
    def physical_resource_id(self) -> str:
        return self.resource_name

    def run(self, event: str, properties: dict[str, Any]) -> None:
        """Run the call for `event` ("Create", "Update", "Delete") with `properties`; raises CustomResourceFailed."""
        raw = properties.get(event) or (properties.get("Update") if event == "Create" else None)
        if not raw:
            return
        call = json.loads(raw) if isinstance(raw, str) else raw
        current = None if event == "Create" else self.resource_name
        function = get_lambda_backend(self.account_id, self.region_name).get_function(properties["ServiceToken"])
        client = role_client(
            f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
            self.region_name,
            boto_service(call["service"]),
            function.role,
            SESSION_NAME,
            # Lambda assumes the function's role for the provider, as on AWS: the trust policy must name it.
            assumer=Assumer(LAMBDA, function.function_arn),
        )
        try:
            response = getattr(client, boto_method(call["action"]))(**_decode(call.get("parameters", {}), current))
        except ClientError as error:
            name = error.response.get("Error", {}).get("Code", "")
            ignored = call.get("ignoreErrorCodesMatching")
            if not (ignored and re.search(ignored, name)):
                raise CustomResourceFailed(self.logical_id, str(error), self.request_id) from error
            response = {}
        response.pop("ResponseMetadata", None)
        data = flatten(response)
        physical = call.get("physicalResourceId") or {}
        if "id" in physical:
            self.resource_name = str(physical["id"])
        elif "responsePath" in physical:
            self.resource_name = str(data[physical["responsePath"]])
        elif event == "Create":
            self.resource_name = self.request_id
        self.set_data(data)

    def delete(self, account_id: str, region_name: str) -> None:
        self.run("Delete", self.properties)


_original_create = custom_model.CustomModel.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_dependencies(depends_on: str | list[str], stack_id: str, account_id: str, region_name: str) -> None:
    """moto's ExecuteChangeSet creates added resources in template order, not DependsOn order; the call must
    see its policy (CDK makes the resource depend on it), so create what it depends on first."""
    from moto.cloudformation import cloudformation_backends

    resources = cloudformation_backends[account_id][region_name].get_stack(stack_id).resource_map
    for logical_id in [depends_on] if isinstance(depends_on, str) else depends_on:
        _ = resources[logical_id]  # the map creates a resource when first read


def _create(
    cls: type[custom_model.CustomModel],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> custom_model.CustomModel:
    if kwargs.get("ResourceType") != RESOURCE_TYPE:
        return _original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    _create_dependencies(cloudformation_json.get("DependsOn", []), kwargs["StackId"], account_id, region_name)
    properties = cloudformation_json["Properties"]
    resource = AwsSdkCallResource(account_id, region_name, kwargs["LogicalId"], properties)
    resource.run("Create", properties)
    return resource


def _update(
    cls: type[custom_model.CustomModel],
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    if not isinstance(original_resource, AwsSdkCallResource):
        raise NotImplementedError(f"moto cannot update a custom resource of type {cloudformation_json.get('Type')}")
    properties = cloudformation_json["Properties"]
    original_resource.run("Update", properties)
    original_resource.properties = properties
    return original_resource


def apply() -> None:
    custom_model.CustomModel.create_from_cloudformation_json = classmethod(_create)  # type: ignore[assignment]
    custom_model.CustomModel.update_from_cloudformation_json = classmethod(_update)  # type: ignore[assignment]
