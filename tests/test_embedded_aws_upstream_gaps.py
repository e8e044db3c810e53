"""moto as shipped still has each gap an adapter closes. When one of these fails after a moto upgrade, the
gap is gone upstream: drop (or shrink) the adapter named in the test."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import REPO_ROOT, shared_run


@pytest.fixture(scope="module")
@shared_run
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


def test_moto_takes_execution_names_aws_refuses(upstream: dict[str, Any]) -> None:  # execution_names.py
    assert upstream["refused_name_status"] == "SUCCEEDED"


def test_moto_takes_oversized_and_deeply_nested_input(upstream: dict[str, Any]) -> None:  # execution_input_limits.py
    assert upstream["oversized_input_error"] is None
    # Taken, or (where Python's recursion limit is low) answered with no error code at all.
    assert "InvalidExecutionInput" not in (upstream["deep_input_error"] or "")


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


def test_moto_cannot_test_a_state(upstream: dict[str, Any]) -> None:  # step_functions_test_state.py
    assert "500" in upstream["test_state_error"]


def test_moto_answers_the_whole_history_at_once(upstream: dict[str, Any]) -> None:  # step_functions_history_pages.py
    assert upstream["history_page"] == {"events": 4, "next_token": False}


def test_moto_keeps_datetimes_in_aws_sdk_results(upstream: dict[str, Any]) -> None:  # step_functions_sdk_timestamps.py
    assert "500" in upstream["sdk_timestamp_error"]


def test_moto_keeps_a_no_value_list_element_as_null(upstream: dict[str, Any]) -> None:  # cloudformation_no_value.py
    assert upstream["no_value_statements"][1:] == [None]


def test_moto_logs_takes_any_key_and_cannot_associate_one(upstream: dict[str, Any]) -> None:  # logs_kms_keys.py
    assert upstream["logs_unusable_key_error"] is None
    assert "500" in upstream["logs_associate_kms_key_error"]  # NotImplementedError in the server


def test_moto_cloudformation_ssm_parameters_reject_tags(upstream: dict[str, Any]) -> None:
    # cloudformation_ssm_parameter_tags.py
    assert "Internal Server Error" in upstream["ssm_parameter_tags_error"]  # TypeError in moto's handler


def test_moto_allows_a_policyless_role_everything(upstream: dict[str, Any]) -> None:  # iam_enforcement.py
    assert upstream["policyless_role_list_buckets_error"] is None


def test_moto_runs_tasks_as_nobody_in_particular(upstream: dict[str, Any]) -> None:
    # step_functions_task_credentials.py: a task should call as the state machine's role (assumed-role/probe/...)
    caller = upstream["task_caller"]
    assert caller["status"] == "SUCCEEDED", caller
    assert '"Arn"' in caller["output"] and ":assumed-role/probe/" not in caller["output"]


def test_moto_cloudformation_skips_bucket_and_topic_policies(upstream: dict[str, Any]) -> None:
    # cloudformation_resource_policies.py
    assert upstream["cfn_bucket_policy_error"].startswith("ClientError")
    assert "NoSuchBucketPolicy" in upstream["cfn_bucket_policy_error"]
    assert "__default_policy_ID" in upstream["cfn_topic_policy"]


def test_moto_bucket_policies_ignore_conditions(upstream: dict[str, Any]) -> None:
    # cloudformation_resource_policies.py turns moto's check off; iam_enforcement.py evaluates conditions
    assert "AccessDenied" in (upstream["tls_only_bucket_put_error"] or "") or "403" in (
        upstream["tls_only_bucket_put_error"] or ""
    )


def test_moto_emits_no_execution_status_change_events(upstream: dict[str, Any]) -> None:
    # step_functions_status_events.py; the control event shows the rule and its queue do deliver.
    assert upstream["control_events_received"] == 1
    assert upstream["status_change_events_received"] == 0


def test_moto_events_cannot_start_a_state_machine(upstream: dict[str, Any]) -> None:
    # events_step_functions_targets.py
    assert "500" in upstream["events_state_machine_target_error"]
    assert upstream["state_machine_target_executions"] == 0


def test_moto_never_completes_a_custom_resource(upstream: dict[str, Any]) -> None:
    # cloudformation_custom_resources.py
    assert upstream["custom_resource_stack_status"] == "CREATE_IN_PROGRESS"


def test_moto_creates_an_amazon_linux_2_notebook(upstream: dict[str, Any]) -> None:  # sagemaker_notebook_platforms.py
    assert upstream["al2_notebook_error"] is None
