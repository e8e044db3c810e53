"""Gap: moto's CloudFormation hands an `AWS::SSM::Parameter`'s `Tags` to SSM in the template's shape.

In a template, a parameter's `Tags` is a map (`{"trainstack:environment": "local"}`, what the CDK emits for every
tagged parameter); SSM's PutParameter takes a list of {Key, Value}. moto passes the map through and fails with
"string indices must be integers" after storing the parameter, so the stack's resource stays unparsed and every
later read of the stack (ListStackResources) creates it again: ParameterAlreadyExists. We translate the map.
"""

from __future__ import annotations

from typing import Any

from moto.ssm.models import Parameter

_original_create = Parameter.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_from_cloudformation_json(
    cls: type[Parameter], resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> Parameter:
    properties = cloudformation_json.get("Properties", {})
    if isinstance(properties.get("Tags"), dict):
        properties["Tags"] = [{"Key": key, "Value": value} for key, value in properties["Tags"].items()]
    return _original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


def apply() -> None:
    Parameter.create_from_cloudformation_json = classmethod(_create_from_cloudformation_json)  # type: ignore[assignment]
