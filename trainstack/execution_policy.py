"""What `cdk bootstrap` needs in each account of a delivery pipeline: the environments a cloud assembly deploys to
and a CloudFormation execution policy scoped to the services its templates create resources of.

The services come from the templates, not a hand list: each resource type's CloudFormation registry schema lists
the actions its create, update and delete handlers call (cfn-lint ships the schemas). The policy allows every
action of the services that own the templates' resource types, and of other services only the actions those
handlers call. A type with no schema is refused by name; a custom resource needs `lambda:InvokeFunction`
(CloudFormation invokes its provider function).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# CDK's own bookkeeping: no AWS call behind it.
_NO_PERMISSIONS = {"AWS::CDK::Metadata"}
_HANDLERS = ("create", "update", "delete")


@dataclass(frozen=True)
class Target:
    """One `aws://account/region` environment of an assembly and the resource types deployed there."""

    account: str
    region: str
    resource_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        return "aws-us-gov" if self.region.startswith("us-gov-") else "aws"


def assembly_targets(assembly_dir: Path) -> list[Target]:
    """Every environment the stacks of a cloud assembly (and its nested stage assemblies) deploy to, sorted."""
    types: dict[tuple[str, str], set[str]] = {}
    for directory in _assemblies(assembly_dir):
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        for artifact in manifest.get("artifacts", {}).values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            account, region = artifact["environment"].removeprefix("aws://").split("/")
            if not account.isdigit():
                raise ValueError(f"{artifact['environment']}: a stack without a concrete account needs none here")
            template = json.loads((directory / artifact["properties"]["templateFile"]).read_text(encoding="utf-8"))
            types.setdefault((account, region), set()).update(
                resource["Type"] for resource in template.get("Resources", {}).values()
            )
    return [Target(account, region, frozenset(found)) for (account, region), found in sorted(types.items())]


def _assemblies(directory: Path) -> list[Path]:
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    nested = [
        directory / artifact["properties"]["directoryName"]
        for artifact in manifest.get("artifacts", {}).values()
        if artifact.get("type") == "cdk:cloud-assembly"
    ]
    return [directory, *(inner for path in nested for inner in _assemblies(path))]


def permissions(resource_types: set[str] | frozenset[str], region: str) -> tuple[set[str], set[str]]:
    """(services, actions): the IAM prefixes of the services owning these resource types, and the further actions
    of other services their CloudFormation handlers call (a Lambda function's create reads EFS and EC2, ...)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    owners: set[str] = set()
    called: set[str] = set()
    for resource_type in sorted(resource_types - _NO_PERMISSIONS):
        if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
            called.add("lambda:InvokeFunction")  # CloudFormation invokes the provider function
            continue
        try:
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
        except ResourceNotFoundError:
            raise ValueError(f"{resource_type}: no CloudFormation registry schema in {region}") from None
        handlers = schema.get("handlers", {})
        actions = {action for handler in _HANDLERS for action in handlers.get(handler, {}).get("permissions", [])}
        owner = _owner(resource_type, actions)
        owners.add(owner)
        called.update(action for action in actions if action.split(":", 1)[0] != owner)
    return owners, {action for action in called if action.split(":", 1)[0] not in owners}


def _owner(resource_type: str, actions: set[str]) -> str:
    """The IAM prefix of the service a resource type belongs to: its namespace when its handlers call that
    prefix, else the prefix its handlers call most (`AWS::StepFunctions::*` -> states)."""
    namespace = resource_type.split("::")[1].lower()
    prefixes = [action.split(":", 1)[0] for action in actions]
    if namespace in prefixes or not prefixes:
        if not prefixes and namespace not in _NAMESPACES_WITHOUT_HANDLERS:
            raise ValueError(f"{resource_type}: its registry schema names no handler permissions")
        return namespace
    return max(sorted(set(prefixes)), key=prefixes.count)


# Resource types whose registry schemas list no handler permissions yet (CloudFormation's older, non-registry
# implementations), whose namespace is their IAM prefix; a new one is refused until it is checked and added here.
_NAMESPACES_WITHOUT_HANDLERS = {"codebuild", "codepipeline"}


def execution_policy(targets: list[Target]) -> dict[str, Any]:
    """The policy document for one account's CloudFormation execution role, over all its targets' resources."""
    owners: set[str] = set()
    called: set[str] = set()
    for target in targets:
        services, actions = permissions(target.resource_types, target.region)
        owners.update(services)
        called.update(actions)
    statements = [
        {
            "Sid": "ServicesOfTheTemplates",
            "Effect": "Allow",
            "Action": [f"{service}:*" for service in sorted(owners)],
            "Resource": "*",
        }
    ]
    called = {action for action in called if action.split(":", 1)[0] not in owners}
    if called:
        statements.append(
            {"Sid": "CalledByTheirHandlers", "Effect": "Allow", "Action": sorted(called), "Resource": "*"}
        )
    return {"Version": "2012-10-17", "Statement": statements}
