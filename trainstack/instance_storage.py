"""Which SageMaker training instance families have local NVMe storage (trainstack/data/instance_storage.json).

A CreateTrainingJob on a local-storage type may not name `ResourceConfig.VolumeKmsKeyId` (botocore's member
documentation; SageMaker refuses it with ValidationException), while on an EBS type the platform must name
its key (IAM refuses a job without it). The request renderers, the IAM rails, the notebook's checks and the
embedded SageMaker all read this one table. Standard library only: the notebook imports it from the repository.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _table() -> dict[str, Any]:
    return json.loads(resources.files("trainstack.data").joinpath("instance_storage.json").read_text())


def local_storage_families() -> tuple[str, ...]:
    return tuple(_table()["local"])


def ebs_families() -> tuple[str, ...]:
    return tuple(_table()["ebs"])


def unconfirmed_families() -> dict[str, str]:
    """Families whose storage no public source states, with why: an environment may not allow them."""
    return dict(_table()["unconfirmed"])


def family(instance_type: str) -> str:
    """`ml.p4de.24xlarge` -> `p4de`."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        raise ValueError(f"instance type {instance_type!r}: expected ml.<family>.<size>, e.g. ml.p4de.24xlarge")
    return parts[1]


def has_local_storage(instance_type: str) -> bool:
    """True for a type whose family has NVMe instance storage (no VolumeKmsKeyId may be sent for it)."""
    return family(instance_type) in local_storage_families()


def unclassified(families: list[str] | tuple[str, ...]) -> list[str]:
    """Those of `families` the table does not classify as local or EBS."""
    known = set(local_storage_families()) | set(ebs_families())
    return [name for name in families if name not in known]
