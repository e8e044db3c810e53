"""Gap: moto's Service Quotas knows only the `vpc` service; SageMaker quotas come from our config.

Serves GetServiceQuota, GetAWSDefaultServiceQuota, ListServiceQuotas and ListAWSDefaultServiceQuotas
for ServiceCode `sagemaker` from the `quotas` section of the embedded environment's config. Names follow
AWS exactly ("ml.m5.xlarge for training job usage", ...); codes come from the shipped table
(`trainstack/data/sagemaker_training_quota_codes.json`) and, for types it lacks (ml.p4de.24xlarge...), a
stable made-up code, so callers must look those up by name with ListServiceQuotas as on AWS.

Applied vs default: a quota whose configured value is 0 counts as "never raised", so GetServiceQuota
answers NoSuchResourceException for it (as AWS does when no applied value exists) and callers must fall
back to GetAWSDefaultServiceQuota. Quotas of types the table knows but the config does not are 0.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from trainstack.config import EmbeddedQuotas

from .json_protocol import AwsError

_TARGET_PREFIX = "ServiceQuotasV20190624."
SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
LONGEST_RUN_TIME_NAME = "Longest run time for a training job"
# Quota kind (as in config and the code table) -> the words AWS puts after the instance type.
KIND_NAMES: dict[str, str] = {
    "training_job_usage": "for training job usage",
    "training_warm_pool_usage": "for training warm pool usage",
    "spot_training_job_usage": "for spot training job usage",
}
_PAGE_DEFAULT = 100


def quota_name(instance_type: str, kind: str) -> str:
    return f"{instance_type} {KIND_NAMES[kind]}"


def synthesized_code(name: str) -> str:
    """A stable code for quotas the public table lacks; shaped like AWS's `L-` + 8 hex digits."""
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


def load_code_table() -> dict[str, Any]:
    text = resources.files("trainstack.data").joinpath("sagemaker_training_quota_codes.json").read_text()
    return json.loads(text)


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    value: float
    applied: bool
    unit: str = "None"


class SageMakerQuotaTable:
    """Every SageMaker training quota the embedded Service Quotas knows, in a stable order."""

    def __init__(self, quotas: EmbeddedQuotas | None, account: str, region: str) -> None:
        self.account = account
        self.region = region
        table = load_code_table()
        configured = quotas.instances if quotas else {}
        entries: list[Quota] = []
        longest = quotas.longest_run_time_seconds if quotas else 5 * 24 * 3600
        entries.append(Quota(table["account_level"][LONGEST_RUN_TIME_NAME], LONGEST_RUN_TIME_NAME, longest, True))
        types = sorted(set(table["instance_types"]) | set(configured))
        for instance_type in types:
            codes = table["instance_types"].get(instance_type, {})
            quota = configured.get(instance_type)
            for kind in KIND_NAMES:
                name = quota_name(instance_type, kind)
                value = float(getattr(quota, kind)) if quota else 0.0
                entries.append(Quota(codes.get(kind) or synthesized_code(name), name, value, applied=value > 0))
        self.entries = entries
        self._by_code = {entry.code: entry for entry in entries}

    def by_code(self, code: str) -> Quota:
        entry = self._by_code.get(code)
        if entry is None:
            raise AwsError("NoSuchResourceException", f"The request failed because the quota {code} does not exist.")
        return entry

    def by_name(self, name: str) -> Quota:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def render(self, entry: Quota) -> dict[str, Any]:
        return {
            "ServiceCode": SERVICE_CODE,
            "ServiceName": SERVICE_NAME,
            "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account}:{SERVICE_CODE}/{entry.code}",
            "QuotaCode": entry.code,
            "QuotaName": entry.name,
            "Value": entry.value,
            "Unit": entry.unit,
            "Adjustable": True,
            "GlobalQuota": False,
            "QuotaAppliedAtLevel": "ACCOUNT",
        }


class SageMakerQuotaHandler:
    """Answers Service Quotas requests whose ServiceCode is `sagemaker`; moto answers the rest."""

    def __init__(self, table: SageMakerQuotaTable) -> None:
        self.table = table

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if not target.startswith(_TARGET_PREFIX) or payload.get("ServiceCode") != SERVICE_CODE:
            return None
        operation = target[len(_TARGET_PREFIX) :]
        if operation == "GetServiceQuota":
            entry = self.table.by_code(payload.get("QuotaCode", ""))
            if not entry.applied:
                raise AwsError(
                    "NoSuchResourceException",
                    f"The request failed because the applied value of quota {entry.code} is not available.",
                )
            return {"Quota": self.table.render(entry)}
        if operation == "GetAWSDefaultServiceQuota":
            return {"Quota": self.table.render(self.table.by_code(payload.get("QuotaCode", "")))}
        if operation in ("ListServiceQuotas", "ListAWSDefaultServiceQuotas"):
            return self._page(payload)
        return None

    def _page(self, payload: dict[str, Any]) -> dict[str, Any]:
        size = int(payload.get("MaxResults") or _PAGE_DEFAULT)
        if not 1 <= size <= 100:
            raise AwsError("ValidationException", "MaxResults must be between 1 and 100")
        token = payload.get("NextToken")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise AwsError("InvalidPaginationTokenException", "Invalid pagination token") from None
        page = self.table.entries[start : start + size]
        answer: dict[str, Any] = {"Quotas": [self.table.render(entry) for entry in page]}
        if start + size < len(self.table.entries):
            answer["NextToken"] = str(start + size)
        return answer
