"""Gap: moto's CloudFormation turns `Ref: AWS::NoValue` inside a list into a null element; AWS drops it.

CloudFormation (Pseudo parameters reference, AWS::NoValue): "Removes the corresponding resource property when
specified as a return value in the Fn::If intrinsic function"; in a list it removes the element. The CDK
bootstrap template writes its roles' trust policies that way (`Fn::If: [HasTrustedAccounts, {...},
{Ref: AWS::NoValue}]` as a Statement element), so moto stored `"Statement": [{...}, null]` and every
AssumeRole of those roles made the embedded IAM evaluator fail on the null (a traceback per call in
`make demo`'s deploy). We drop the element, as CloudFormation does.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing

_original_clean_json = parsing.clean_json


def clean_json(resource_json: Any, resources_map: Any) -> Any:
    if isinstance(resource_json, list):
        cleaned = (clean_json(item, resources_map) for item in resource_json)
        return [item for item in cleaned if item is not None]
    return _original_clean_json(resource_json, resources_map)


def apply() -> None:
    parsing.clean_json = clean_json
