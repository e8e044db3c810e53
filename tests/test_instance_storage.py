"""The instance storage table (trainstack/data/instance_storage.json) against botocore and the SageMaker SDK."""

from __future__ import annotations

import re

import botocore.session
import pytest

from trainstack import instance_storage


def _training_families() -> set[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {instance_storage.family(t) for t in model.shape_for("TrainingInstanceType").enum}


def test_every_training_family_of_botocore_is_classified_exactly_once() -> None:
    """A new botocore's new families fail here until the table says whether they have local storage."""
    local = set(instance_storage.local_storage_families())
    ebs = set(instance_storage.ebs_families())
    unconfirmed = set(instance_storage.unconfirmed_families())
    assert not (local & ebs) and not (local & unconfirmed) and not (ebs & unconfirmed)
    assert _training_families() - local - ebs - unconfirmed == set()


def test_the_table_agrees_with_the_sdks_rule_and_botocores_examples() -> None:
    """sagemaker.utils.volume_size_supported (SDK v2): a family with a "d", or starting g5, g6, p5, trn1, has no
    EBS volume. The table may know more (trn2, p6-*), never less. botocore names p4d, g4dn, g5 as NVMe families
    and c5, p2 as EBS ones."""
    for family in _training_families() - set(instance_storage.unconfirmed_families()):
        sdk_says_local = "d" in family or family.startswith(("g5", "g6", "p5", "trn1"))
        if sdk_says_local:
            assert instance_storage.has_local_storage(f"ml.{family}.xlarge"), family
    assert all(instance_storage.has_local_storage(f"ml.{f}.xlarge") for f in ("p4d", "g4dn", "g5", "p4de"))
    assert not any(instance_storage.has_local_storage(f"ml.{f}.xlarge") for f in ("c5", "p2", "m5"))


def test_a_malformed_instance_type_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=re.escape("instance type 'p4de.24xlarge': expected ml.<family>.<size>")):
        instance_storage.has_local_storage("p4de.24xlarge")
