"""Gap: moto's CloudFormation passes an `AWS::KMS::Key`'s `Tags` ({Key, Value}) to KMS, which wants {TagKey, TagValue}.

Every tagged key (the CDK tags everything in our stacks) fails with KeyError 'TagKey' half-way through
a stack. We translate the tag shape before moto's handler sees it.
"""

from __future__ import annotations

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
    return _original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


def apply() -> None:
    Key.create_from_cloudformation_json = classmethod(_create_from_cloudformation_json)  # type: ignore[assignment]
