"""Hostile run inputs (tests/data/hostile_run_inputs.json), checked by the synthesized state machine's own Validate
(run_preview), and run inputs generated from the run-input schema: whatever Validate accepts, SageMaker's request
rules (the embedded AWS's, trainstack/embedded_aws/sagemaker_request_rules.py) accept too; whatever it refuses
creates nothing. Fast: no deploy, no job. A sample of the corpus runs on the deployed platform
(tests/test_hostile_input_deployed.py).

Each corpus case names what it expects: "accepted", or a text the refusal contains (the field, at least). Cases
whose refusal belongs to a rule not written yet carry "pending": the rule's issue, so they fail loudly (strict
xfail) the day the rule lands and the entry is then made a plain case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.test_run_input_rules import QUOTAS, SCHEMA, _request
from tests.test_run_input_rules import definition as definition  # the module-scoped fixture
from trainstack.embedded_aws.json_protocol import AwsError
from trainstack.run_preview import preview

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS: list[dict[str, Any]] = json.loads(
    (REPO_ROOT / "tests" / "data" / "hostile_run_inputs.json").read_text(encoding="utf-8")
)
# Run on the deployed platform too: one of each class, each refused by Validate.
DEPLOYED_IDS = (
    "env-ld-preload",
    "channel-other-bucket",
    "hp-sagemaker-reserved",
    "tag-platform",
    "image-foreign",
    "resume-64",
    "count-string",
    "nested-tags-200",
)


def _case(entry: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=entry["pending"])] if "pending" in entry else []
    return pytest.param(entry["input"], entry["expect"], id=entry["id"], marks=marks)


DEPLOYED_SAMPLE = [
    pytest.param(entry["id"], entry["input"], entry["expect"], id=entry["id"])
    for entry in CORPUS
    if entry["id"] in DEPLOYED_IDS
]


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    ids = [entry["id"] for entry in CORPUS]
    assert len(ids) >= 50 and len(set(ids)) == len(ids)
    assert set(DEPLOYED_IDS) <= set(ids)
    assert all("pending" not in entry for entry in CORPUS if entry["id"] in DEPLOYED_IDS)


@pytest.mark.parametrize(("run_input", "expect"), [_case(entry) for entry in CORPUS])
def test_a_hostile_input_is_refused_naming_its_field_or_accepted_with_a_request_sagemaker_accepts(
    definition, run_input: Any, expect: str
) -> None:
    if expect == "accepted":
        _request(definition, run_input)  # asserts no problems, then SageMaker's own rules
        return
    result = preview(definition, run_input, quotas=QUOTAS)
    assert result.request is None, f"accepted: {json.dumps(run_input)[:300]}"
    assert any(expect in problem for problem in result.problems), result.problems


# --- generated from the schema ----------------------------------------------------------------------------------

# The schema's own strategy, plus values that stress what the schema leaves open (names and values of any
# characters) and shapes it refuses, so refusals are exercised as well as acceptances.
_HOSTILE_CHARACTERS = list('=:/ \t\n\r\x00\x85\u2028\u2029é\N{GRINNING FACE}"$')
_WORD = st.from_regex(r"[a-z_]{1,6}", fullmatch=True)
# A word with one hostile character inside, or any text at all.
_TEXT = st.one_of(
    st.builds(lambda a, c, b: a + c + b, _WORD, st.sampled_from(_HOSTILE_CHARACTERS), _WORD),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
_VALUE = st.one_of(_TEXT, st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.none())
# Each map on its own terms: names the schema allows next to names it does not, values of any characters.
_OPEN = st.fixed_dictionaries(
    {},
    optional={
        "hyperparameters": st.dictionaries(_TEXT, _VALUE, min_size=1),
        "environment": st.dictionaries(
            st.one_of(st.from_regex(r"(NCCL|TORCH|FI)_[A-Z0-9_]{1,8}", fullmatch=True), _TEXT), _TEXT, max_size=3
        ),
        "tags": st.dictionaries(_TEXT, _TEXT, max_size=3),
        "channels": st.dictionaries(_TEXT, st.one_of(_TEXT, st.none()), max_size=3),
    },
)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    # Report the example as generated: shrinking JSONata-evaluated inputs takes minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(run_input=st.one_of(from_schema(SCHEMA), _OPEN))
def test_what_validate_accepts_sagemaker_accepts_and_what_it_refuses_creates_nothing(
    definition, run_input: Any
) -> None:
    try:
        result = preview(definition, run_input, quotas=QUOTAS)
    except Exception as crash:  # on AWS: States.QueryEvaluationError, a crash instead of InvalidInput
        raise AssertionError(f"Validate crashed on {json.dumps(run_input)[:500]}: {crash}") from None
    if result.request is None:
        # Refused before BuildRequest: each problem names what it is about, and no request (no job) exists.
        assert result.problems and all(isinstance(p, str) and p for p in result.problems), result.problems
        return
    try:
        _request(definition, run_input)
    except AwsError as refused:
        raise AssertionError(
            f"Validate accepted {json.dumps(run_input)[:500]} but SageMaker refuses: {refused}"
        ) from None
