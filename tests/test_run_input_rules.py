"""What a run input may do to its job, checked by the synthesized state machine's own JSONata (run_preview):
environment variables by allow-list; S3 locations outside the data bucket; the platform's tags; tag characters
AWS refuses; execution names as tag values; job-name prefixes per environment; limits on the request SageMaker
receives; channels. Rules are named by their id in the rulebook (trainstack/run_input_rules.py), which also
generates the schema's constraints and the README's tables (checked current here)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import regex

from trainstack import run_input_rules
from trainstack.config import (
    ConfigError,
    ResourceNames,
    check_job_name_prefixes,
    load_environment,
    load_selected,
    parse_environment,
)
from trainstack.embedded_aws.json_protocol import AwsError
from trainstack.embedded_aws.sagemaker_request_rules import validate_create_training_job
from trainstack.platform.constructs.create_training_job_state import job_name_pattern
from trainstack.platform.constructs.training_run_input import TAG_UNICODE_LETTERS
from trainstack.run_environment_rules import (
    allowed_families,
    allowed_names,
    is_allowed,
    platform_names,
    refused_groups,
    refused_pattern,
    refused_reason,
)
from trainstack.run_preview import definition_from_template, preview

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO_ROOT / "trainstack" / "schemas" / "training-run-input.schema.json").read_text())
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


def _refused_names() -> list[str]:
    """Every refused name, each prefix with a suffix, each word inside an allowed family, and the other case where
    case does not matter."""
    names = list(platform_names())
    for group in refused_groups():
        for name in (
            *group.names,
            *(prefix + "X" for prefix in group.prefixes),
            *("X" + suffix for suffix in group.suffixes),
            *(f"NCCL_{word}_X" for word in group.words),
        ):
            names.append(name)
            if group.any_case:
                names.append(name.lower())
    return names


def _problems(definition: dict, run_input: object, **kwargs: str) -> list[str]:
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


@pytest.mark.parametrize("name", _refused_names())
def test_every_refused_environment_variable_is_invalid_input_naming_the_rule(definition, name: str) -> None:
    problems = _problems(definition, {"environment": {name: "http://198.51.100.7/"}})
    reason = refused_reason(name)
    assert reason is not None and not is_allowed(name, CONFIG.training.allowed_environment)
    rule_id = "environment-platform" if name in platform_names() else "environment-allow-list"
    assert any(f"environment.{name}: a run may not set it: {reason} [{rule_id}]" in p for p in problems), problems
    # The schema (editors, the console example) refuses it too.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"environment": {name: "x"}}, SCHEMA)


@pytest.mark.parametrize(
    "name", ["PYTHONWARNINGS", "BROWSER", "PERL5OPT", "CA_REPOSITORY_ARN", "MASTER_ADDR", "MASTER_PORT"]
)
def test_the_issues_code_execution_and_rendezvous_examples_are_refused(definition, name: str) -> None:
    problems = _problems(definition, {"environment": {name: "ignore::antigravity.X"}})
    assert any(p.startswith(f"environment.{name}: a run may not set it: ") for p in problems), problems
    assert all(p.endswith("[environment-allow-list]") for p in problems), problems


@pytest.mark.parametrize(
    "name",
    [
        "NCCL_NET_PLUGIN",
        "NCCL_TUNER_PLUGIN",
        "NCCL_TOPO_FILE",
        "NCCL_COMM_ID",
        "TORCH_HOME",
        "TORCH_EXTENSIONS_DIR",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
        "TORCH_DEVICE_BACKEND_AUTOLOAD",
        "TORCH_LOGS_OUT",
        "TORCH_TRACE",
        "TORCHINDUCTOR_CACHE_DIR",
        "TORCHELASTIC_RUN_ID",
        "FI_PROVIDER_PATH",
        "HF_HUB_CACHE",
        "CUDA_INJECTION64_PATH",
        "CUDA_HOME",
        "MY_FLAG",
    ],
)
def test_names_outside_the_allow_list_are_refused_even_in_the_allowed_families(definition, name: str) -> None:
    problems = _problems(definition, {"environment": {name: "1"}})
    assert any(p.startswith(f"environment.{name}: ") and p.endswith("[environment-allow-list]") for p in problems)
    assert not is_allowed(name)


def test_a_name_no_group_documents_is_refused_with_what_is_allowed(definition) -> None:
    [problem] = _problems(definition, {"environment": {"MY_FLAG": "1"}})
    assert problem.startswith("environment.MY_FLAG: not on the allow-list; a run may set OMP_NUM_THREADS")
    assert "NCCL_*" in problem and "training.allowed_environment TRAINSTACK_MARK" in problem


@pytest.mark.parametrize(
    "name",
    [
        "NCCL_DEBUG",
        "NCCL_SOCKET_IFNAME",
        "TORCH_DISTRIBUTED_DEBUG",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING",
        "FI_LOG_LEVEL",
        "HF_HUB_OFFLINE",
        "CUDA_LAUNCH_BLOCKING",
        "TOKENIZERS_PARALLELISM",
        "OMP_NUM_THREADS",
        "PYTORCH_CUDA_ALLOC_CONF",
        # The packaged training code's ranks per CPU host (training_code/launcher.py).
        "TRAINSTACK_CPU_PROCESSES_PER_HOST",
        # The local environment's training.allowed_environment.
        "TRAINSTACK_MARK",
    ],
)
def test_allowed_variables_reach_the_job(definition, name: str) -> None:
    request = _request(definition, {"environment": {name: "1"}})
    assert request["Environment"][name] == "1"
    assert request["Environment"]["NODE_NUMBER"] == "1"
    jsonschema.validate({"environment": {name: "1"}}, SCHEMA)
    assert is_allowed(name, CONFIG.training.allowed_environment)


def test_the_built_in_allow_list_is_small_and_names_no_refused_name() -> None:
    assert set(allowed_families()) == {"NCCL_", "TORCH_", "FI_", "HF_HUB_", "CUDA_"}
    for name in allowed_names():
        assert refused_reason(name) is None, name


def test_environment_limits_are_sagemakers_and_leave_room_for_the_platforms_names(definition) -> None:
    long_value = _problems(definition, {"environment": {"NCCL_A": "x" * 513}})
    assert long_value == ["environment: NCCL_A: values are at most 512 characters [environment-values]"]
    _request(definition, {"environment": {"NCCL_A": "x" * 512}})
    too_many = _problems(definition, {"environment": {f"NCCL_V{i}": "1" for i in range(99)}})
    assert too_many[0].startswith("environment: at most 98 variables"), too_many
    request = _request(definition, {"environment": {f"NCCL_V{i}": "1" for i in range(98)}})
    assert len(request["Environment"]) == 100


@pytest.mark.parametrize("value", ["a\u0000b", "line\nbreak", "tab\t"])
def test_control_characters_in_environment_values_are_refused(definition, value: str) -> None:
    problems = _problems(definition, {"environment": {"NCCL_DEBUG": value}})
    assert problems == [
        "environment: NCCL_DEBUG: values must not contain control characters (NUL, newlines, tabs) [environment-values]"
    ]


def _config(**training: object) -> dict:
    return {
        "name": "xone",
        "account": "123456789012",
        "region": "us-east-1",
        "prefix": "xone-platform",
        "tags": {"team": "t", "cost_centre": "c"},
        "notebook": {"enabled": False},
        "training": {"instance_type": "ml.m5.xlarge", "allowed_instance_families": ["m5"], **training},
    }


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


# --- the rulebook and what is generated from it ----------------------------------------------------------


def test_rule_ids_are_unique_and_every_rule_is_in_the_deployed_validate(definition) -> None:
    ids = [r.id for r in run_input_rules.RULES]
    assert len(ids) == len(set(ids))
    validate = definition["States"]["Validate"]["Assign"]["problems"]
    for rule_id in ids:
        assert f'"{rule_id}")' in validate, rule_id


def test_the_schema_and_the_readme_are_generated_from_the_rulebook() -> None:
    assert run_input_rules.render_schema(SCHEMA) == SCHEMA, "run python -m trainstack.run_input_rules"
    readme = (REPO_ROOT / "README.md").read_text()
    assert run_input_rules.render_readme(readme) == readme, "run python -m trainstack.run_input_rules"
    assert SCHEMA["properties"]["environment"]["propertyNames"]["not"]["pattern"] == refused_pattern()
    for r in run_input_rules.RULES:
        assert f"| `{r.id}` | `{r.field}` |" in readme


def test_every_problem_names_its_rule_and_causes_stay_short(definition) -> None:
    hostile = {
        "hyperparameters": {f"h{i}=x": "v" * 3000 for i in range(30)},
        "environment": {"PYTHONWARNINGS": "x" * 600, "A" * 600: "x"},
        "tags": {"k" * 500: "v"},
    }
    problems = _problems(definition, hostile)
    assert len(problems) == 21 and problems[-1].startswith("and ")
    ids = {r.id for r in run_input_rules.RULES}
    for problem in problems[:-1]:
        assert problem.endswith("]") and problem.rsplit("[", 1)[1][:-1] in ids, problem
        assert len(problem) < 1200, problem


def test_inputs_nested_too_deep_are_refused_before_any_other_check(definition) -> None:
    deep = json.loads("[" * 300 + "1" + "]" * 300)
    assert _problems(definition, {"hyperparameters": {"x": deep}, "tags": 7}) == [
        "input: nested more than 256 levels deep (objects and arrays inside each other) [input-depth]"
    ]
    _request(definition, {"hyperparameters": {"x": json.loads("[" * 200 + "1" + "]" * 200)}})
    assert _problems(definition, "x") == [
        'input: expected a JSON object such as {} or {"instance_count": 2}, got "x" [input-object]'
    ]


# --- limits on the request SageMaker receives -------------------------------------------------------------


def test_hyperparameters_are_counted_with_the_defaults_and_the_platforms(definition) -> None:
    defaults = len(CONFIG.training.hyperparameters)
    room = 100 - 5 - defaults
    request = _request(definition, {"hyperparameters": {f"h{i}": 1 for i in range(room)}})
    assert len(request["HyperParameters"]) == 100
    [problem] = _problems(definition, {"hyperparameters": {f"h{i}": 1 for i in range(room + 1)}})
    assert problem.startswith("hyperparameters: the request would hold 101 hyperparameters")
    assert problem.endswith("[hyperparameters-final-count]")


@pytest.mark.parametrize("name", ["a=b", "a b", "x\ny", "x\u2028y", "x\u0085y", "x\u0000", "-x", "", "k" * 257])
def test_hyperparameter_names_the_toolkit_would_mangle_are_refused(definition, name: str) -> None:
    problems = _problems(definition, {"hyperparameters": {name: 1}})
    assert any(p.endswith("[hyperparameter-names]") for p in problems), problems


def test_hyperparameter_names_of_any_script_and_exact_integers_reach_the_job(definition) -> None:
    request = _request(definition, {"hyperparameters": {"学习率": 0.001, "model.name": "x", "k" * 256: 3}})
    assert request["HyperParameters"]["学习率"] == "0.001" and request["HyperParameters"]["k" * 256] == "3"
    [problem] = _problems(definition, {"hyperparameters": {"seed": 12345678901234567890}})
    assert problem.startswith("hyperparameters.seed: ") and "is beyond 2**53" in problem
    assert problem.endswith("pass it as a string [hyperparameter-integer-precision]")


def test_a_nul_in_a_hyperparameter_value_is_refused(definition) -> None:
    problems = _problems(definition, {"hyperparameters": {"note": "a\u0000b"}})
    assert problems == ["hyperparameters.note: a value must not contain a NUL character [hyperparameter-value-nul]"]


def test_job_names_stay_within_63_characters_with_the_longest_retry(definition) -> None:
    # 30 characters by the pattern's count but 31 long: dashes may repeat.
    problems = _problems(definition, {"job_name_prefix": "trainstack--" + "a" * 19})
    assert any(p.endswith("[job-name-prefix-shape]") for p in problems), problems
    prefix = "trainstack-" + "a" * 19
    request = _request(definition, {"job_name_prefix": prefix})
    assert len(request["TrainingJobName"]) + len("-r3") <= 63


# --- channels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ({"TRAIN": "datasets/x/"}, "channels: train, TRAIN: channel names must differ in more than case"),
        ({"a": "datasets/a/", "A": "datasets/b/"}, "channels: a, A: channel names must differ"),
        ({"x": "S3://other-bucket/x/"}, 'channels.x: "S3://other-bucket/x/" is outside the platform\'s data bucket'),
        ({"x": "s3a://other/x/"}, "is outside the platform's data bucket"),
        ({"x": "https://example.com/x/"}, "is outside the platform's data bucket"),
        ({"x": f"S3://{DATA}/x/"}, "is outside the platform's data bucket"),
        ({"x": ""}, "channels.x: an empty prefix would give the job the whole data bucket"),
        ({"x": f"s3://{DATA}/"}, "channels.x: an empty prefix would give the job the whole data bucket"),
        ({"x": "/datasets/x/"}, "must not start with '/'"),
        ({"x": "datasets/\nx/"}, "must not contain control characters"),
        ({"x": "d/" * 600}, "the S3 URI would be"),
        ({f"c{i}": "datasets/c/" for i in range(18)}, "channels: the request would hold 21 channels"),
    ],
)
def test_channels_sagemaker_or_the_toolkit_would_refuse_or_misread_are_invalid_input(
    definition, channels: dict, expected: str
) -> None:
    problems = _problems(definition, {"channels": channels})
    assert any(expected in p for p in problems), problems


def test_channels_in_the_data_bucket_and_replaced_defaults_are_accepted(definition) -> None:
    request = _request(definition, {"channels": {"TRAIN": f"s3://{DATA}/datasets/x/"}, "replace_channels": True})
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["TRAIN"]
    _request(definition, {"channels": {f"c{i}": "datasets/c/" for i in range(20)}, "replace_channels": True})


# --- config files obey the same rules at synth ------------------------------------------------------------


@pytest.mark.parametrize(
    ("training", "tags_extra", "expected"),
    [
        (
            {"environment": {"PYTHONWARNINGS": "ignore::antigravity.X"}},
            {},
            r"training\.environment\.PYTHONWARNINGS: a run may not set it: .*\[environment-allow-list\]",
        ),
        (
            {"environment": {"PIP_INDEX_URL": "https://pypi.example/simple"}},
            {},
            r"training\.environment\.PIP_INDEX_URL: a run may not set it: pip reads every option",
        ),
        ({"environment": {"MASTER_ADDR": "198.51.100.7"}}, {}, r"\[environment-allow-list\]"),
        ({"allowed_environment": ["BROWSER"]}, {}, r"allowed_environment: 'BROWSER' can never be allowed"),
        ({"allowed_environment": ["PYTHON*"]}, {}, r"neither a variable name"),
        (
            {},
            {"trainstack:environment": "prod"},
            r"tags\.extra\.trainstack:environment: tags starting with trainstack: .*\[tags-reserved\]",
        ),
        ({}, {"aws:owner": "x"}, r"tags\.extra\.aws:owner: names starting with aws: are reserved"),
        ({"allowed_instance_families": ["m5", "zz9"]}, {}, r"'zz9' is not a SageMaker training instance family"),
        (
            {"channels": {"train": {"prefix": "datasets/../other/"}}},
            {},
            r"training\.channels\.train: .*must not contain '\.\.' \[channel-shape\]",
        ),
        ({"channels": {f"c{i}": {"prefix": "d/"} for i in range(25)}}, {}, r"\[channels-final-count\]"),
        (
            {"hyperparameters": {f"h{i}": 1 for i in range(96)}},
            {},
            r"training\.hyperparameters: the request would hold 101",
        ),
        (
            {"hyperparameters": {"model_s3_uri": "s3://other-bucket/m/"}},
            {},
            r"training\.hyperparameters\.model_s3_uri: .*\[hyperparameter-s3\]",
        ),
        ({"job_name_prefix": "a--" + "b" * 28}, {}, r"job_name_prefix"),
    ],
)
def test_config_files_are_refused_at_synth_by_the_run_input_rules(
    training: dict, tags_extra: dict, expected: str
) -> None:
    data = _config(**training)
    data["tags"]["extra"] = tags_extra
    with pytest.raises(ConfigError, match=expected):
        parse_environment(data, "xone.yaml")


def test_a_config_file_within_the_rules_loads() -> None:
    config = parse_environment(_config(environment={"NCCL_DEBUG": "WARN"}, allowed_environment=["MYTEAM_*"]), "x.yaml")
    assert is_allowed("MYTEAM_MODE", config.training.allowed_environment) and not is_allowed("MYTEAMX")


def test_a_selected_environment_whose_prefix_nests_with_anothers_is_refused(tmp_path: Path) -> None:
    for name in ("dev", "local"):
        (tmp_path / f"{name}.yaml").write_text((REPO_ROOT / "config" / f"{name}.yaml").read_text())
    dev = (REPO_ROOT / "config" / "dev.yaml").read_text()
    nested = dev.replace("name: dev", "name: deveu").replace("prefix: trainstack-dev ", "prefix: trainstack-dev-eu ")
    (tmp_path / "deveu.yaml").write_text(nested)
    with pytest.raises(ConfigError, match="could stop and tag each other's jobs"):
        load_selected("deveu", tmp_path)
    (tmp_path / "deveu.yaml").unlink()
    assert [c.name for c in load_selected("local", tmp_path)] == ["local"]


@pytest.mark.parametrize("prefix", ["trainstack-prod", "trainstack-dev-llama"])
def test_a_run_cannot_name_its_jobs_like_another_environments(definition, prefix: str) -> None:
    [problem] = _problems(definition, {"job_name_prefix": prefix})
    assert problem.startswith(f'job_name_prefix: "{prefix}" names jobs like environment ')
    assert problem.endswith("[job-name-prefix-other-environment]")
    _request(definition, {"job_name_prefix": "trainstack-llama"})


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
