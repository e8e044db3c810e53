"""Gap: moto's CloudWatch Logs has no AssociateKmsKey, and takes any `kmsKeyId` on CreateLogGroup unchecked.

The stacks associate the platform key with an existing training log group
(`trainstack/platform/constructs/training_log_group.py`); on moto that call raises NotImplementedError. We
implement it, and for
both calls do what AWS does before accepting a key: the key must exist in the account and region, and its key
policy must let the regional CloudWatch Logs service principal (`logs.<region>.amazonaws.com`) use it, or the call
fails with AccessDeniedException. So a key policy that forgets CloudWatch Logs fails offline as it would on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import kms_backends
from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.responses import LogsResponse

_original_create_log_group = LogsResponse.create_log_group
# What CloudWatch Logs calls on the key to encrypt a log group's data.
_NEEDED = ("kms:GenerateDataKey", "kms:Decrypt")


def _allows_logs(policy: str, region: str) -> bool:
    principal = f"logs.{region}.amazonaws.com"
    for statement in json.loads(policy).get("Statement", []):
        services = (statement.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        granted = all(
            any(a in (needed, "kms:*") or needed.startswith(a.rstrip("*")) for a in actions) for needed in _NEEDED
        )
        if statement.get("Effect") == "Allow" and principal in services and granted:
            return True
    return False


def check_key_for_logs(account_id: str, region: str, key_id: str, log_group: str) -> None:
    """Raise AccessDeniedException unless `key_id` (id or ARN) is a key CloudWatch Logs may use here."""
    backend = kms_backends[account_id][region]
    key = backend.keys.get(key_id.rsplit("/", 1)[-1])
    if key is None or not _allows_logs(key.policy, region):
        raise JsonRESTError(
            "AccessDeniedException",
            f"The specified KMS key does not exist or is not allowed to be used with LogGroup '{log_group}'",
        )


def _create_log_group(self: LogsResponse) -> str:
    key_id = self._get_param("kmsKeyId")
    if key_id:
        check_key_for_logs(self.current_account, self.region, key_id, self._get_param("logGroupName"))
    return _original_create_log_group(self)


def _associate_kms_key(self: LogsResponse) -> str:
    name, key_id = self._get_param("logGroupName"), self._get_param("kmsKeyId")
    group: Any = self.logs_backend.groups.get(name)
    if group is None:
        raise ResourceNotFoundException()
    check_key_for_logs(self.current_account, self.region, key_id, name)
    group.kms_key_id = key_id
    return ""


def apply() -> None:
    LogsResponse.create_log_group = _create_log_group  # type: ignore[method-assign]
    LogsResponse.associate_kms_key = _associate_kms_key  # type: ignore[attr-defined]
