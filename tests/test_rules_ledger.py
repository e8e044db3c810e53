"""The ledger of documented rules (trainstack/rules_ledger.py): every constraint sentence botocore states for a
member of the platform's requests is classified, each classification is checked where it can be, and the
StartExecution rules it says the embedded AWS enforces are shown refused here."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from conftest import REPO_ROOT

from trainstack import rules_ledger
from trainstack.run_preview import definition_from_template, preview

NEVER_SENT = "the platform never sends"


def test_every_constraint_sentence_is_classified() -> None:
    """A new botocore's new (or reworded) sentences fail here until they are classified in the data file."""
    entries = rules_ledger.ledger()
    assert entries, "botocore's documentation yielded no constraint sentences: the sentence filter is broken"
    unclassified = [e.sentence.key for e in entries if e.status == "unclassified"]
    assert unclassified == [], "classify these in trainstack/data/rules_ledger.json:\n" + "\n".join(unclassified)
    assert rules_ledger.stale() == [], "botocore no longer states these; remove them from the data file"
    for entry in entries:
        assert entry.status in rules_ledger.STATUSES, entry
        assert bool(entry.test) == (entry.status == "enforced") and bool(entry.why) != bool(entry.test), entry


def test_the_sentence_filter_keeps_constraints_and_drops_descriptions() -> None:
    documentation = (
        "<p>The ML compute instance type.</p> <note><p>You can't request a <code>VolumeKmsKeyId</code> when "
        "using an instance type with local storage.</p></note> <p>You can specify a maximum of 100 items.</p>"
    )
    assert rules_ledger.constraint_sentences(documentation) == [
        "You can't request a VolumeKmsKeyId when using an instance type with local storage.",
        "You can specify a maximum of 100 items.",
    ]


def test_every_enforced_sentence_names_a_test_that_exists() -> None:
    for entry in rules_ledger.ledger():
        if entry.status != "enforced":
            continue
        found = re.fullmatch(r"(tests/[\w/]+\.py)::(\w+)(\[.+\])?", entry.test)
        assert found, f"{entry.sentence.key}: {entry.test!r} is not tests/<file>.py::<test>[<case>]"
        path, name, case = found.groups()
        source = (REPO_ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{entry.test}: no such test"
        if case:
            assert f'"{case[1:-1]}"' in source, f"{entry.test}: no case {case} in {path}"


def _paths(value: Any, path: str = "") -> set[str]:
    """Member paths of a request, list items under their list's path (as the ledger names members)."""
    if isinstance(value, dict):
        return {path} - {""} | {p for k, v in value.items() for p in _paths(v, f"{path}.{k}" if path else k)}
    if isinstance(value, list):
        return {path} | {p for item in value for p in _paths(item, path)}
    return {path}


def test_members_the_ledger_says_are_never_sent_are_absent_from_every_rendered_request(synthesized) -> None:
    """The `cannot-arise` reasons that say "never sends" hold for every example run of every environment."""
    never = {
        e.sentence.member
        for e in rules_ledger.ledger()
        if e.sentence.operation == "CreateTrainingJob" and e.why.startswith(NEVER_SENT)
    }
    assert never
    quota = {"code": "L-TEST", "name": "test", "source": "applied"}
    quotas = {
        k: {**quota, "key": k, "value": v} for k, v in (("training", 8), ("warm_pool", 8), ("max_runtime", 10**6))
    }
    rendered = 0
    for env in ("local", "dev", "prod"):
        template = synthesized.template(env, "training")
        [machine] = [
            r
            for k, r in template["Resources"].items()
            if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("PipelineStateMachine")
        ]
        definition = definition_from_template(machine["Properties"]["DefinitionString"])
        for example in sorted((REPO_ROOT / "examples" / "inputs").glob("*.json")):
            for run_input in (json.loads(example.read_text()), {**json.loads(example.read_text()), "spot": True}):
                request = preview(definition, run_input, quotas=quotas).request
                if request is None:
                    continue  # the run input is not for this environment (refused before any request)
                rendered += 1
                assert never.isdisjoint(_paths(request)), (env, example.stem, never & _paths(request))
    assert rendered >= 6


# ------------------------------------------------------------------------------------------- StartExecution


@pytest.fixture(scope="module")
def machine(embedded_aws: Any) -> str:
    from trainstack.embedded_aws.testing import ROLE

    definition = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    created = embedded_aws.client("stepfunctions").create_state_machine(
        name=f"ledger-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )
    return created["stateMachineArn"]


def _refused(embedded_aws: Any, code: str, **arguments: Any) -> str:
    sfn = embedded_aws.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ClientError) as raised:
        sfn.start_execution(**arguments)
    assert raised.value.response["Error"]["Code"] == code, raised.value.response
    return raised.value.response["Error"]["Message"]


@pytest.mark.parametrize("name", ["with space", "a<b", "a*b", "a:b", "tab\there", "run$1"])
def test_start_execution_refuses_a_name_with_characters_aws_refuses(embedded_aws: Any, machine: str, name: str) -> None:
    message = _refused(embedded_aws, "InvalidName", stateMachineArn=machine, name=name, input="{}")
    assert message == f"Invalid Name: '{name}'"


def test_start_execution_refuses_a_name_in_use_with_another_input(embedded_aws: Any, machine: str) -> None:
    from trainstack.embedded_aws.testing import wait_for_execution

    sfn = embedded_aws.client("stepfunctions")
    name = f"once-{uuid.uuid4().hex[:8]}"
    started = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    wait_for_execution(sfn, started["executionArn"])
    message = _refused(embedded_aws, "ExecutionAlreadyExists", stateMachineArn=machine, name=name, input='{"a": 1}')
    assert started["executionArn"] in message


@pytest.mark.parametrize("payload", ["", "not json", "{"])
def test_start_execution_refuses_input_that_is_not_json(embedded_aws: Any, machine: str, payload: str) -> None:
    _refused(embedded_aws, "InvalidExecutionInput", stateMachineArn=machine, name=uuid.uuid4().hex, input=payload)
