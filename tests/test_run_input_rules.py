"""What a run input may not do to its job, checked by the synthesized state machine's own JSONata (run_preview):
environment variables that redirect the toolkit, Python, pip or the AWS SDK; S3 locations outside the data bucket;
the platform's tags; tag characters AWS refuses; execution names as tag values; job-name prefixes per environment."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import regex

from stacks.constructs.create_training_job_state import job_name_pattern
from stacks.constructs.training_run_input import TAG_UNICODE_LETTERS
from trainstack.config import ConfigError, ResourceNames, check_job_name_prefixes, load_environment, parse_environment
from trainstack.embedded_aws.json_protocol import AwsError
from trainstack.embedded_aws.sagemaker_request_rules import validate_create_training_job
from trainstack.run_environment_rules import (
    denied_reason,
    deny_groups,
    deny_pattern,
    platform_names,
)
from trainstack.run_preview import definition_from_template, preview

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO_ROOT / "schemas" / "training-run-input.schema.json").read_text())
CONFIG = load_environment("local")
DATA = "trainstack-local-data-123456789012-us-east-1"
QUOTAS = {
    key: {"key": key, "code": "L-TEST", "name": f"test {key}", "value": value, "source": "applied"}
    for key, value in (("training", 8), ("warm_pool", 4), ("max_runtime", 432000))
}
# AWS's tag key/value pattern (botocore's SageMaker model), matched as the embedded AWS matches it (Java classes).
AWS_TAG_CHARACTER = regex.compile(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]", regex.VERSION1)


@pytest.fixture(scope="module")
def definition(synthesized) -> dict:
    template = synthesized.template("local", "training")
    # The pipeline; the training stack also holds its pool cleanup (tests/test_pool_cleanup.py).
    [machine] = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("PipelineStateMachine")
    ]
    return definition_from_template(machine["Properties"]["DefinitionString"])


def _denied_names() -> list[str]:
    """Every name of the deny-list, each prefix with a suffix, and the other case where case does not matter."""
    names = list(platform_names())
    for group in deny_groups():
        for name in (
            *group.names,
            *(prefix + "X" for prefix in group.prefixes),
            *("X" + suffix for suffix in group.suffixes),
        ):
            names.append(name)
            if group.any_case:
                names.append(name.lower())
    return names


def _problems(definition: dict, run_input: dict, **kwargs: str) -> list[str]:
    result = preview(definition, run_input, quotas=QUOTAS, **kwargs)
    assert result.request is None, f"{run_input} was accepted"
    return result.problems


def _request(definition: dict, run_input: dict, **kwargs: str) -> dict:
    result = preview(definition, run_input, quotas=QUOTAS, **kwargs)
    assert result.problems == [], result.problems
    request = json.loads(json.dumps(result.request).replace("arn:aws:cdk:::deploy-time-value", "x"))
    request["RoleArn"] = "arn:aws:iam::123456789012:role/trainstack-training"
    if "VpcConfig" in request:
        request["VpcConfig"] = {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    # SageMaker's own rules (tag patterns and lengths, Environment limits), as the embedded AWS enforces them.
    validate_create_training_job(request, longest_run_seconds=None)
    return request


# --- environment ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _denied_names())
def test_every_deny_listed_environment_variable_is_invalid_input_naming_it(definition, name: str) -> None:
    problems = _problems(definition, {"environment": {name: "http://198.51.100.7/"}})
    reason = denied_reason(name)
    assert reason is not None
    assert any(f"environment.{name}: a run may not set it: {reason}" in p for p in problems), problems
    # The schema (editors, the console example, trainstack run --dry-run's check) refuses it too.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"environment": {name: "x"}}, SCHEMA)


def test_the_schema_refuses_exactly_the_deny_list() -> None:
    assert SCHEMA["properties"]["environment"]["propertyNames"]["not"]["pattern"] == deny_pattern()


@pytest.mark.parametrize(
    "name",
    ["NCCL_DEBUG", "TORCH_DISTRIBUTED_DEBUG", "FI_LOG_LEVEL", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM", "MY_FLAG"],
)
def test_framework_tuning_variables_reach_the_job(definition, name: str) -> None:
    request = _request(definition, {"environment": {name: "1"}})
    assert request["Environment"][name] == "1"
    assert request["Environment"]["NODE_NUMBER"] == "1"
    jsonschema.validate({"environment": {name: "1"}}, SCHEMA)


def test_environment_limits_are_sagemakers_and_leave_room_for_the_platforms_names(definition) -> None:
    long_value = _problems(definition, {"environment": {"A": "x" * 513}})
    assert any("environment: A: values are at most 512 characters" in p for p in long_value), long_value
    _request(definition, {"environment": {"A": "x" * 512}})
    too_many = _problems(definition, {"environment": {f"V{i}": "1" for i in range(99)}})
    assert any("environment: at most 98 variables" in p for p in too_many), too_many
    request = _request(definition, {"environment": {f"V{i}": "1" for i in range(98)}})
    assert len(request["Environment"]) == 100


def test_config_defaults_follow_the_same_environment_rules() -> None:
    data = {
        "name": "xone",
        "account": "123456789012",
        "region": "us-east-1",
        "prefix": "xone-platform",
        "tags": {"team": "t", "cost_centre": "c"},
        "training": {"environment": {"PIP_INDEX_URL": "https://pypi.example/simple"}},
    }
    with pytest.raises(ConfigError, match=r"environment\.PIP_INDEX_URL: not allowed: pip reads every option"):
        parse_environment(data, "xone.yaml")


# --- S3 locations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_input", "expected"),
    [
        ({"hyperparameters": {"model_s3_uri": "s3://attacker-bucket/m/"}}, "hyperparameters.model_s3_uri: "),
        ({"hyperparameters": {"resume": "S3://attacker-bucket/c/"}}, "names S3 bucket(s) attacker-bucket outside"),
        ({"hyperparameters": {"files": [f"s3://{DATA}/a", "s3a://other/b"]}}, "names S3 bucket(s) other outside"),
        ({"hyperparameters": {"cfg": {"path": "s3://other/x"}}}, "hyperparameters.cfg: "),
        (
            {"hyperparameters": {"data_s3_prefix": "https://example.com/x"}},
            "expected an S3 location in the data bucket",
        ),
        ({"hyperparameters": {"data_s3_uri": 7}}, "hyperparameters.data_s3_uri: expected an S3 location"),
        ({"hyperparameters": {"data_s3_uri": "models/../../x"}}, "must not contain a '..' segment"),
        ({"environment": {"EVAL_DATA": "s3://other/eval/"}}, "environment.EVAL_DATA: "),
        # A bucket whose name starts with the data bucket's is another bucket.
        ({"hyperparameters": {"model_s3_uri": f"s3://{DATA}-copy/m"}}, f"{DATA}-copy outside"),
    ],
)
def test_s3_locations_outside_the_data_bucket_are_invalid_input(definition, run_input: dict, expected: str) -> None:
    problems = _problems(definition, run_input)
    assert any(expected in p and "data bucket" in p for p in problems), problems


def test_s3_locations_inside_the_data_bucket_are_passed_on(definition) -> None:
    hyperparameters = {"model_s3_uri": f"s3://{DATA}/models/base/", "eval_s3_prefix": "datasets/eval/", "lr": 0.1}
    request = _request(definition, {"hyperparameters": hyperparameters})
    assert request["HyperParameters"]["model_s3_uri"] == json.dumps(f"s3://{DATA}/models/base/")
    assert request["HyperParameters"]["eval_s3_prefix"] == '"datasets/eval/"'


# --- tags -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["trainstack:cost-centre", "trainstack:environment", "trainstack:team", "trainstack:execution", "TrainStack:x"],
)
def test_platform_tags_cannot_be_set_or_overridden(definition, key: str) -> None:
    problems = _problems(definition, {"tags": {key: "someone-else"}})
    assert any(f"tags.{key}: tags starting with trainstack: are set by the platform" in p for p in problems), problems


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"stage": "retrain(v2)"}, 'tags.stage: "retrain(v2)" is not a tag value'),
        ({"stage": "x" * 257}, "tags.stage: "),
        ({"k" * 129: "x"}, "tag keys are 1 to 128"),
        ({"": "x"}, "tags.: tag keys are 1 to 128"),
        ({"budget€": "x"}, "tags.budget€: tag keys are"),
        ({f"t{i}": "x" for i in range(47)}, "tags: at most 49 tags with the environment's own"),
    ],
)
def test_tags_aws_refuses_are_invalid_input(definition, tags: dict, expected: str) -> None:
    problems = _problems(definition, {"tags": tags})
    assert any(expected in p for p in problems), problems


def test_valid_tags_reach_the_job_next_to_the_platforms(definition) -> None:
    tags = {"stage": "retrain v2 @team:ml/x=y+z", "équipe": "entraînement", "チーム": "学習", "k" * 128: "v" * 256}
    request = _request(definition, {"tags": tags})
    sent = [(t["Key"], t["Value"]) for t in request["Tags"]]
    assert len({key for key, _ in sent}) == len(sent)  # no key twice
    assert dict(sent)["trainstack:environment"] == "local" and dict(sent)["équipe"] == "entraînement"


def test_the_tag_character_class_is_never_more_forgiving_than_aws() -> None:
    ranges = regex.findall(r"\\u([0-9A-F]{4})-\\u([0-9A-F]{4})", TAG_UNICODE_LETTERS)
    assert ranges
    for low, high in ranges:
        for code in range(int(low, 16), int(high, 16) + 1):
            assert AWS_TAG_CHARACTER.fullmatch(chr(code)), f"U+{code:04X} is in the class but AWS refuses it"
    for character in "ABCxyz019 _.:/=+-@":
        assert AWS_TAG_CHARACTER.fullmatch(character)


@pytest.mark.parametrize(
    "execution_name",
    [
        "retrain(v2)",
        "entraînement-été",
        "学習-2026",
        "a!'()*.~_-" * 8,  # 80 characters, every punctuation mark an execution name allows
        "x" * 80,
    ],
)
def test_any_execution_name_becomes_a_valid_tag_value(definition, execution_name: str) -> None:
    request = _request(definition, {}, execution_name=execution_name)
    [value] = [t["Value"] for t in request["Tags"] if t["Key"] == "trainstack:execution"]
    assert len(value) == len(execution_name)
    if execution_name == "retrain(v2)":
        assert value == "retrain_v2_"
    if execution_name == "entraînement-été":
        assert value == execution_name  # letters of other scripts are kept


# --- job-name prefixes ------------------------------------------------------------------------------------


def test_job_name_prefix_defaults_to_the_environments_prefix_with_a_separator_in_iam() -> None:
    for env in ("dev", "prod"):
        config = load_environment(env)
        assert config.training.job_name_prefix == config.prefix
        assert job_name_pattern(config) == f"training-job/{config.prefix}-*"


def test_a_prefix_too_long_for_job_names_must_name_its_job_name_prefix() -> None:
    data = {
        "name": "xone",
        "account": "123456789012",
        "region": "us-east-1",
        "prefix": "a" * 31,
        "tags": {"team": "t", "cost_centre": "c"},
    }
    with pytest.raises(ConfigError, match=r"set training\.job_name_prefix"):
        parse_environment(data, "xone.yaml")
    data.update(prefix="a" * 28, training={"job_name_prefix": "short"}, notebook={"enabled": False})
    assert parse_environment(data, "xone.yaml").training.job_name_prefix == "short"


def test_environments_of_one_account_cannot_reach_each_others_jobs() -> None:
    dev = load_environment("dev")
    nested = dev.model_copy(
        update={"name": "dev-eu", "training": dev.training.model_copy(update={"job_name_prefix": "trainstack-dev-eu"})}
    )
    with pytest.raises(ConfigError, match="could stop and tag each other's jobs"):
        check_job_name_prefixes([dev, nested])
    # trainstack-dev2 is not inside trainstack-dev-*: with the separator the two are apart.
    apart = dev.model_copy(
        update={"name": "dev2", "training": dev.training.model_copy(update={"job_name_prefix": "trainstack-dev2"})}
    )
    check_job_name_prefixes([dev, apart])
    other_account = nested.model_copy(update={"account": "333333333333"})
    check_job_name_prefixes([dev, other_account])


def test_the_readme_lists_every_deny_list_group_and_name() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for group in deny_groups():
        assert f"| {group.id} |" in readme and group.reason in readme
        for name in (*group.names, *(p + "*" for p in group.prefixes), *("*" + s for s in group.suffixes)):
            assert f"`{name}`" in readme, name


# --- TensorBoard output ------------------------------------------------------------------------------------


def test_every_job_uploads_tensorboard_logs_beside_its_model(definition) -> None:
    request = _request(definition, {})
    assert request["TensorBoardOutputConfig"] == {
        "S3OutputPath": f"s3://{ResourceNames.of(CONFIG).artifacts_bucket}/output/{request['TrainingJobName']}"
        "/tensorboard/",
        "LocalPath": "/opt/ml/output/tensorboard",
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # botocore's model: S3Uri is at most 1024 characters, as SageMaker words it.
        (
            {"S3OutputPath": "s3://bucket/" + "a" * 1020},
            "at 'tensorBoardOutputConfig.s3OutputPath' failed to satisfy constraint: "
            "Member must have length less than or equal to 1024",
        ),
        ({"S3OutputPath": "file:///tmp/x"}, "Member must satisfy regular expression pattern"),
        # Valid on AWS, but only /opt/ml maps onto an embedded host's folder: refused saying so.
        ({"S3OutputPath": "s3://bucket/tb/", "LocalPath": "/tmp/tb"}, "supports only a folder under /opt/ml/"),
        ({"S3OutputPath": "https://bucket.s3.amazonaws.com/tb/"}, "only s3:// URIs are supported by the embedded"),
    ],
)
def test_a_tensorboard_config_the_embedded_sagemaker_cannot_honour_is_refused(
    definition, config: dict, expected: str
) -> None:
    request = {**_request(definition, {}), "TensorBoardOutputConfig": config}
    with pytest.raises(AwsError) as refused:
        validate_create_training_job(request, longest_run_seconds=None)
    assert refused.value.code == "ValidationException" and expected in refused.value.message
