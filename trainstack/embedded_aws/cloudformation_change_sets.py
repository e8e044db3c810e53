"""Gap: moto's ExecuteChangeSet leaves a stack without outputs and exports, and picks change sets by name only.

A CREATE change set makes an empty Stack first; executing it creates the resources but never rebuilds
the stack's outputs or registers its exports, so the next stack's `Fn::ImportValue` (what the CDK emits
for every cross-stack reference) fails with "No export named ... found". Its `Fn::ImportValue` can't see
other stacks' exports either (the empty stack got no export table). And a change set named
`cdk-deploy-change-set` is looked up by name across all stacks. We execute the change set of the given
stack, with the region's exports visible, then rebuild outputs and re-register exports as CreateStack does.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend

_original_execute_change_set = CloudFormationBackend.execute_change_set


def _find_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None) -> Any:
    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]  # an ARN
    for change_set in backend.change_sets.values():
        stack = change_set.stack
        if change_set.change_set_name == change_set_name and stack_name in (None, stack.name, stack.stack_id):
            return change_set
    raise ValidationError(change_set_name, message=f"ChangeSet [{change_set_name}] does not exist")


def execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = _find_change_set(self, change_set_name, stack_name)
    stack = self.stacks[change_set.stack.stack_id]
    # Fn::ImportValue resolves against this table: give the stack the region's live one.
    stack.cross_stack_resources = self.exports
    stack.resource_map.cross_stack_resources = self.exports
    previous_exports = [export.name for export in stack.exports]
    _original_execute_change_set(self, change_set.change_set_id, stack_name)
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    for name in previous_exports:
        self.exports.pop(name, None)
    self._validate_export_uniqueness(stack)
    for export in stack.exports:
        self.exports[export.name] = export


def apply() -> None:
    CloudFormationBackend.execute_change_set = execute_change_set  # type: ignore[method-assign]
