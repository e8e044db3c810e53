"""SageMaker quota values as the state machine reads them (trainstack/platform/constructs/quota_check.py), from the CLI.

Same order as the Quotas states, so `quotas` and `run --dry-run` show what a run will meet:
1. the code from the shipped table (trainstack/data/sagemaker_training_quota_codes.json), else the exact
   quota name found by paging ListServiceQuotas (the table lacks, for one, ml.p4de.24xlarge);
2. the applied value (GetServiceQuota), else the AWS default (GetAWSDefaultServiceQuota), else none.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from trainstack.package_data import data_file

QUOTA_TABLE = data_file("trainstack", "data/sagemaker_training_quota_codes.json")
LONGEST_RUN_TIME = "Longest run time for a training job"
_KINDS = {"training": "training job usage", "warm_pool": "training warm pool usage"}
_TABLE_KEYS = {"training": "training_job_usage", "warm_pool": "training_warm_pool_usage"}
# Missing applied value, or a quota this account/region does not have: try the next source.
_NOT_THERE = {"NoSuchResourceException", "ResourceNotFoundException", "IllegalArgumentException"}


@cache
def _table() -> dict[str, Any]:
    return json.loads(QUOTA_TABLE.read_text(encoding="utf-8"))


def quota_name(instance_type: str, kind: str) -> str:
    return f"{instance_type} for {_KINDS[kind]}"


@dataclass
class Quota:
    """One quota in the shape the state machine's `$quotas` entries have (key, code, name, value, source)."""

    key: str
    code: str | None
    name: str
    value: float | None
    source: str  # "applied", "aws default" or "not found"

    def as_state(self) -> dict[str, Any]:
        return asdict(self)


class QuotaReader:
    """Reads quotas for one invocation; the ListServiceQuotas listing is fetched at most once."""

    def __init__(self, service_quotas: Any) -> None:
        self._client = service_quotas
        self._listing: dict[str, str] | None = None

    def listing(self) -> dict[str, str]:
        """Quota name -> code for every SageMaker quota the account lists."""
        if self._listing is None:
            pages = self._client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
            self._listing = {q["QuotaName"]: q["QuotaCode"] for page in pages for q in page["Quotas"]}
        return self._listing

    def code(self, instance_type: str, kind: str) -> str | None:
        known = _table()["instance_types"].get(instance_type, {}).get(_TABLE_KEYS[kind])
        return known or self.listing().get(quota_name(instance_type, kind))

    def read(self, key: str, code: str | None, name: str) -> Quota:
        if code is None:
            return Quota(key, None, name, None, "not found")
        for source, call in (
            ("applied", self._client.get_service_quota),
            ("aws default", self._client.get_aws_default_service_quota),
        ):
            try:
                value = call(ServiceCode="sagemaker", QuotaCode=code)["Quota"]["Value"]
            except ClientError as error:
                if error.response["Error"]["Code"] in _NOT_THERE:
                    continue
                raise
            return Quota(key, code, name, value, source)
        return Quota(key, code, name, None, "not found")

    def for_instance_type(self, instance_type: str) -> dict[str, Quota]:
        return {
            kind: self.read(kind, self.code(instance_type, kind), quota_name(instance_type, kind)) for kind in _KINDS
        }

    def for_instance_types(self, instance_types: list[str]) -> dict[str, dict[str, Quota]]:
        # Two calls per type, often a few dozen types: in parallel (boto3 clients are thread-safe).
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(instance_types, pool.map(self.for_instance_type, instance_types), strict=True))

    def longest_run_time(self) -> Quota:
        return self.read("max_runtime", _table()["account_level"].get(LONGEST_RUN_TIME), LONGEST_RUN_TIME)

    def run_quotas(self, instance_type: str) -> dict[str, Any]:
        """`$quotas` as the GetQuotas state assigns it, for `run_preview`."""
        quotas = {**self.for_instance_type(instance_type), "max_runtime": self.longest_run_time()}
        return {key: quota.as_state() for key, quota in quotas.items()}

    def instance_types(self, families: list[str]) -> list[str]:
        """Every training instance type of these families that has a quota (table or listing)."""
        suffix = f" for {_KINDS['training']}"
        listed = {name.removesuffix(suffix) for name in self.listing() if name.endswith(suffix)}
        known = set(_table()["instance_types"]) | listed
        return sorted(t for t in known if t.startswith("ml.") and t.split(".")[1] in families)
