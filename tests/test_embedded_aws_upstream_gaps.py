"""moto as shipped still has each gap an adapter closes. When one of these fails after a moto upgrade, the
gap is gone upstream: drop (or shrink) the adapter named in the test."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from trainstack.config import REPO_ROOT


@pytest.fixture(scope="module")
def upstream() -> dict[str, Any]:
    # A fresh interpreter: our adapters patch moto process-wide once imported.
    result = subprocess.run(
        [sys.executable, "-m", "trainstack.embedded_aws.upstream_gaps"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_moto_version_is_the_pinned_one() -> None:
    from importlib.metadata import version

    assert version("moto") == "5.2.5", "adapters were written against moto 5.2.5: re-run this file after upgrading"


def test_moto_cannot_evaluate_jsonata(upstream: dict[str, Any]) -> None:  # jsonata_evaluator.py
    assert upstream["jsonata"]["status"] == "FAILED"
    assert "NoneType" in upstream["jsonata"]["cause"]


def test_moto_stubs_the_jsonata_hash_function(upstream: dict[str, Any]) -> None:  # jsonata_hash.py
    assert "Function $hash is currently not supported" in upstream["jsonata_hash_declaration"]


def test_moto_does_not_know_the_servicequotas_asl_name(upstream: dict[str, Any]) -> None:  # aws_sdk_service_names.py
    assert "Unknown service: 'servicequotas'" in upstream["servicequotas_aws_sdk"]["cause"]


def test_moto_refuses_sagemaker_sync(upstream: dict[str, Any]) -> None:  # sagemaker_sync_integration.py
    assert "Unsupported sync callback" in upstream["sagemaker_sync"]["cause"]


def test_moto_names_unnamed_executions_none(upstream: dict[str, Any]) -> None:  # execution_names.py
    assert upstream["unnamed_execution_arn"].endswith(":None")


def test_moto_has_no_sagemaker_quotas(upstream: dict[str, Any]) -> None:  # sagemaker_quotas.py
    assert upstream["sagemaker_quota_error"].startswith("NoSuchResourceException")


def test_moto_completes_training_jobs_at_once(upstream: dict[str, Any]) -> None:  # sagemaker_training_api.py
    assert upstream["training_status_at_once"] == "Completed"
    assert upstream["stop_training_error"] is not None


def test_moto_misreads_local_template_urls(upstream: dict[str, Any]) -> None:  # cloudformation_template_url.py
    errors = upstream["template_url_errors"]
    local = next(url for url in errors if url.startswith("http://127.0.0.1"))
    assert "bucket does not exist" in errors[local]


def test_moto_cannot_start_cloudformation_state_machines(upstream: dict[str, Any]) -> None:
    # cloudformation_state_machines.py
    assert upstream["cfn_state_machine_start_error"].startswith("StateMachineDoesNotExist")


def test_moto_change_sets_register_no_exports(upstream: dict[str, Any]) -> None:  # cloudformation_change_sets.py
    assert upstream["change_set_exports"] == []


def test_moto_cloudformation_kms_keys_reject_tags(upstream: dict[str, Any]) -> None:  # cloudformation_kms_tags.py
    assert upstream["kms_key_tags_error"] is not None


def test_moto_cannot_validate_a_definition(upstream: dict[str, Any]) -> None:  # validate_state_machine_definition.py
    assert "500" in upstream["validate_definition_error"]
