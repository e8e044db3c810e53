"""Gap: moto's CloudFormation hands an `AWS::KMS::Key`'s properties to KMS in the template's shapes.

`Tags` arrive as {Key, Value} where KMS wants {TagKey, TagValue}: every tagged key (the CDK tags everything)
fails with KeyError 'TagKey' half-way through a stack. `KeyPolicy` arrives as a JSON object where KMS keeps
a string: DescribeKey on the key then fails with a 500. We translate both before moto's handler sees them.
"""

from __future__ import annotations

import json
from typing import Any

from moto.kms.models import Key

_original_create = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_from_cloudformation_json(
    cls: type[Key], resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> Key:
    properties = cloudformation_json.get("Properties", {})
    properties["Tags"] = [
        {"TagKey": tag["Key"], "TagValue": tag["Value"]} if "Key" in tag else tag for tag in properties.get("Tags", [])
    ]
    if isinstance(properties.get("KeyPolicy"), dict):
        properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
    return _original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


def apply() -> None:
    Key.create_from_cloudformation_json = classmethod(_create_from_cloudformation_json)  # type: ignore[assignment]
