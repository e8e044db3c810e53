"""The synthesized state machine, checked without AWS: its JSONata evaluates, and every request it renders
is valid for botocore's SageMaker model and matches what the SageMaker SDK v2 Estimator sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import jsonschema
import pytest
from botocore.validate import ParamValidator

from trainstack.config import ResourceNames, load_environment
from trainstack.embedded_aws.sagemaker_request_rules import validate_create_training_job
from trainstack.package_data import training_code_dir
from trainstack.platform.constructs.code_package import build_source_tarball
from trainstack.run_preview import definition_from_template, evaluate, held_instances, preview

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO_ROOT / "examples" / "inputs").glob("*.json"))
SCHEMA = json.loads((REPO_ROOT / "trainstack" / "schemas" / "training-run-input.schema.json").read_text())
ARTIFACTS = "s3://trainstack-local-artifacts-123456789012-us-east-1"
_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
CREATE_TRAINING_JOB = _SAGEMAKER.operation_model("CreateTrainingJob").input_shape


def _quota(key: str, value: int | None) -> dict:
    return {"key": key, "code": "L-TEST", "name": f"test {key}", "value": value, "source": "applied"}


QUOTAS = {
    "training": _quota("training", 8),
    "warm_pool": _quota("warm_pool", 4),
    "max_runtime": _quota("max_runtime", 432000),
}


def _state_machine(template: dict) -> dict:
    # The pipeline; the training stack also holds its pool cleanup (tests/test_pool_cleanup.py).
    [machine] = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("PipelineStateMachine")
    ]
    return machine


@pytest.fixture(scope="module")
def definitions(synthesized) -> dict[str, dict]:
    return {
        env: definition_from_template(
            _state_machine(synthesized.template(env, "training"))["Properties"]["DefinitionString"]
        )
        for env in ("local", "dev", "prod")
    }


def _valid_request(request: dict) -> None:
    report = ParamValidator().validate(request, CREATE_TRAINING_JOB)
    assert not report.has_errors(), report.generate_report()
    # SageMaker's server-side rules too (patterns, maximum lengths, enums, documented limits), with values of
    # the deployed shape where synthesis leaves a token (role ARN, subnets, security groups).
    deployed = json.loads(json.dumps(request))
    placeholder = "arn:aws:cdk:::deploy-time-value"
    if deployed["RoleArn"] == placeholder:
        deployed["RoleArn"] = "arn:aws:iam::123456789012:role/trainstack-training"
    if "VpcConfig" in deployed:
        for key, prefix in (("Subnets", "subnet"), ("SecurityGroupIds", "sg")):
            deployed["VpcConfig"][key] = [
                f"{prefix}-0123456789abcdef{index}" if value == placeholder else value
                for index, value in enumerate(deployed["VpcConfig"][key])
            ]
    validate_create_training_job(deployed, longest_run_seconds=None)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_example_inputs_render_valid_create_training_job_requests(definitions, env: str, example: Path) -> None:
    run_input = json.loads(example.read_text())
    jsonschema.validate(run_input, SCHEMA)
    config = load_environment(env)
    if (
        "instance_type" in run_input
        and run_input["instance_type"].split(".")[1] not in config.training.allowed_instance_families
    ):
        pytest.skip(f"{example.stem} asks for a family {env} does not allow")
    if run_input.get("instance_count", 1) > config.training.instance_count.max:
        pytest.skip(f"{example.stem} asks for more instances than {env} allows")
    package = run_input.get("code", {}).get("package", "")
    if package and not package.startswith(f"s3://{ResourceNames.of(config).artifacts_bucket}/"):
        pytest.skip(f"{example.stem} names a code package in another environment's artifacts bucket")
    result = preview(definitions[env], run_input, quotas=QUOTAS)
    assert result.problems == []
    _valid_request(result.request)


def test_request_matches_the_sdk_estimators_script_mode_request(definitions) -> None:
    config = load_environment("local")
    names = ResourceNames.of(config)
    hyperparameters = {
        "num_train_epochs": 3,
        "learning_rate": 5e-4,
        "run_name": "baseline",
        "layers": [1, 2],
        "bf16": True,
    }
    result = preview(definitions["local"], {"hyperparameters": hyperparameters, "instance_count": 2}, quotas=QUOTAS)
    request = result.request
    hps = request["HyperParameters"]
    # Every value is json.dumps-encoded, user ones included, exactly as the SDK's Estimator does.
    merged = {**config.training.hyperparameters, **hyperparameters}
    for name, value in merged.items():
        assert json.loads(hps[name]) == value
        assert hps[name] == json.dumps(value, separators=(",", ":")) or hps[name] == json.dumps(value)
    assert hps["run_name"] == '"baseline"'
    assert hps["sagemaker_program"] == json.dumps(config.training.entry_point)
    assert hps["sagemaker_container_log_level"] == "20"
    assert hps["sagemaker_job_name"] == json.dumps(request["TrainingJobName"])
    assert hps["sagemaker_region"] == '"us-east-1"'
    assert json.loads(hps["sagemaker_submit_directory"]).startswith("s3://")
    assert all(isinstance(v, str) for v in hps.values())

    assert request["RoleArn"].endswith(f":role/{names.execution_role}") or "deploy-time-value" in request["RoleArn"]
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert request["AlgorithmSpecification"]["TrainingImage"] == config.image_uri
    assert {m["Name"] for m in request["AlgorithmSpecification"]["MetricDefinitions"]} >= {"train_loss", "eval_loss"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 2 * 24 * 3600}  # the seed's max_run
    assert request["ProfilerConfig"] == {"DisableProfiler": True}
    assert "DebugHookConfig" not in request
    assert request["EnableInterContainerTrafficEncryption"] is True  # multi-node
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["ResourceConfig"]["VolumeKmsKeyId"] and request["OutputDataConfig"]["KmsKeyId"]
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{names.artifacts_bucket}/checkpoints/{result.job_name}/"
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{names.artifacts_bucket}/output/"
    assert request["Environment"] == {"NODE_NUMBER": "2", "MODEL_S3_BUCKET": names.data_bucket}
    assert request["VpcConfig"]["Subnets"]
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert (
        channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{names.data_bucket}/datasets/sample/train/"
    )
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["trainstack:environment"] == "local" and tags["trainstack:execution"] == "preview-0000"
    _valid_request(request)


def test_execution_names_become_valid_tag_values(definitions) -> None:
    # Execution names allow characters tag values do not, e.g. parentheses: SageMaker would refuse the job.
    result = preview(definitions["local"], {}, quotas=QUOTAS, execution_name="retrain(v2)!")
    tags = {t["Key"]: t["Value"] for t in result.request["Tags"]}
    assert tags["trainstack:execution"] == "retrain_v2__"
    _valid_request(result.request)


def test_spot_single_node_and_no_compression_render_as_expected(definitions) -> None:
    spot = preview(
        definitions["local"],
        {"spot": True, "keep_alive_seconds": 0, "max_runtime_seconds": 3600, "max_wait_seconds": 7200},
        quotas=QUOTAS,
    ).request
    assert spot["EnableManagedSpotTraining"] is True
    assert spot["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert "KeepAlivePeriodInSeconds" not in spot["ResourceConfig"]
    assert spot["EnableInterContainerTrafficEncryption"] is False
    _valid_request(spot)
    prod = preview(definitions["prod"], {}, quotas=QUOTAS).request
    assert prod["OutputDataConfig"]["CompressionType"] == "NONE"  # large models skip the tar.gz
    assert prod["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 3600
    assert {c["ChannelName"]: c["InputMode"] for c in prod["InputDataConfig"]}["train"] == "FastFile"
    _valid_request(prod)


@pytest.mark.parametrize(
    ("run_input", "expected"),
    [
        ([], "input: expected a JSON object"),
        ({"instance_typ": "ml.g5.xlarge"}, "unknown field(s) instance_typ"),
        (
            {"instance_type": "p4de.24xlarge"},
            'instance_type: expected a SageMaker training instance type such as "ml.g5.2xlarge", got "p4de.24xlarge"',
        ),
        (
            {"instance_type": "ml.c6i.xlarge"},
            'instance_type: "ml.c6i.xlarge" is of family "c6i", which this environment does not allow',
        ),
        ({"instance_count": 0}, "instance_count: expected a whole number from 1 to 4, got 0"),
        ({"instance_count": 1.5}, "instance_count: expected a whole number from 1 to 4, got 1.5"),
        ({"hyperparameters": "lr=1"}, 'hyperparameters: expected an object of names to values, got "lr=1"'),
        (
            {"hyperparameters": {"sagemaker_program": "x.py"}},
            "sagemaker_program: names starting with sagemaker_ are set by the platform",
        ),
        ({"hyperparameters": {"prompt": "x" * 2600}}, "prompt: each value must encode to at most 2500 characters"),
        (
            {"channels": {"train": "s3://someone-elses-bucket/data/"}},
            'channels.train: "s3://someone-elses-bucket/data/" is outside the platform\'s data bucket',
        ),
        (
            {"channels": {"train": {"prefix": "d/", "input_mode": "Stream"}}},
            'channels.train.input_mode: expected one of File, FastFile, Pipe, got "Stream"',
        ),
        ({"channels": {"bad name": "d/"}}, "channels.bad name: channel names must match"),
        ({"channels": {"train": "../../etc/"}}, "must not contain '..'"),
        ({"environment": {"A": 1}}, "environment: expected an object of names to string values"),
        ({"environment": {"1BAD": "x"}}, "environment: variable names must match"),
        ({"keep_alive_seconds": 3601}, "keep_alive_seconds: expected a whole number from 0 to 3600, got 3601"),
        ({"keep_alive_seconds": -1}, "keep_alive_seconds: expected a whole number from 0 to 3600, got -1"),
        ({"spot": True}, "keep_alive_seconds: warm pools are not available with spot training"),
        ({"spot": "yes"}, 'spot: expected true or false, got "yes"'),
        (
            {"spot": True, "keep_alive_seconds": 0, "max_wait_seconds": 100},
            "max_wait_seconds: must be at least max_runtime_seconds (172800), got 100",
        ),
        ({"max_runtime_seconds": 30}, "max_runtime_seconds: expected a whole number from 60 to 2419200, got 30"),
        ({"volume_size_gb": 0}, "volume_size_gb: expected a whole number from 1 to 16384, got 0"),
        ({"job_name_prefix": "other-team"}, 'job_name_prefix: must be "trainstack" or start with "trainstack-"'),
        # Without the separator, trainstack2-... would be outside IAM's trainstack-* (another environment's names).
        ({"job_name_prefix": "trainstack2"}, 'job_name_prefix: must be "trainstack" or start with "trainstack-"'),
        (
            {"job_name_prefix": "trainstack_x"},
            'job_name_prefix: expected up to 30 letters, digits and dashes, got "trainstack_x"',
        ),
        ({"tags": {"aws:owner": "x"}}, "tags.aws:owner: names starting with aws: are reserved [tags-reserved]"),
        ({"tags": ["a"]}, "tags: expected an object of tag names to string values"),
        ({"code": {"entry_point": "../run.py"}}, 'code.entry_point: "../run.py" must be a relative path inside'),
        ({"code": {"entry_point": "src/../../x.py"}}, "must be a relative path inside the package"),
        ({"code": {"entry_point": "/opt/ml/code/x.py"}}, "no leading '/', no '..'"),
        ({"code": {"entry_point": "train.ipynb"}}, "code.entry_point: expected a .py or .sh file name"),
        ({"code": {"package": f"{ARTIFACTS}/code/x.tar.gz"}}, "code.entry_point: expected the script to run"),
        (
            {"code": {"package": f"{ARTIFACTS}/output/x.tar.gz", "entry_point": "train.py"}},
            'code.package: "s3://trainstack-local-artifacts-123456789012-us-east-1/output/x.tar.gz" is not a'
            " .tar.gz under the platform's code prefix s3://trainstack-local-artifacts-123456789012-us-east-1/code/",
        ),
        (
            {"code": {"package": "s3://someone-elses-bucket/code/x.tar.gz", "entry_point": "train.py"}},
            "is not a .tar.gz under the platform's code prefix",
        ),
        ({"code": {"package": f"{ARTIFACTS}/code/../output/x.tar.gz", "entry_point": "t.py"}}, "code.package: "),
        ({"code": {"entry_point": "t.py", "source_dir": "."}}, "code: unknown field(s) source_dir"),
        ({"image": "docker.io/library/python:3.11"}, 'image: "docker.io/library/python:3.11" is not an allowed image'),
        (
            {"image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training-nightly:1"},
            # local runs DLCs: the platform's own repository exists only in `repository` mode.
            "is not an allowed image; expected <repository>:<tag> or <repository>@sha256:<digest> of one of "
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training",
        ),
        ({"image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training"}, "is not an allowed image"),
        ({"replace_channels": 1}, "replace_channels: expected true or false, got 1"),
    ],
)
def test_bad_input_yields_a_problem_naming_the_field_value_and_rule(definitions, run_input, expected: str) -> None:
    result = preview(definitions["local"], run_input, quotas=QUOTAS)
    assert result.request is None
    assert any(expected in problem for problem in result.problems), result.problems


def test_a_runs_own_code_and_image_replace_the_packaged_ones(definitions) -> None:
    package = f"{ARTIFACTS}/code/sourcedir/0123abcd/sourcedir.tar.gz"
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
    result = preview(
        definitions["local"],
        {"code": {"package": package, "entry_point": "src/train.py"}, "image": image},
        quotas=QUOTAS,
    )
    assert result.problems == []
    _valid_request(result.request)
    hps = result.request["HyperParameters"]
    assert hps["sagemaker_program"] == '"src/train.py"' and hps["sagemaker_submit_directory"] == json.dumps(package)
    assert result.request["AlgorithmSpecification"]["TrainingImage"] == image
    # The environment's default hyperparameters belong to the packaged code: a package of one's own gets none.
    assert not [name for name in hps if not name.startswith("sagemaker_")]

    # Only an entry point: another script of the platform's own package.
    other = preview(definitions["local"], {"code": {"entry_point": "scripts/eval.sh"}}, quotas=QUOTAS).request
    assert other["HyperParameters"]["sagemaker_program"] == '"scripts/eval.sh"'
    assert other["HyperParameters"]["num_train_epochs"] == "2"
    default = preview(definitions["local"], {}, quotas=QUOTAS).request
    assert (
        other["HyperParameters"]["sagemaker_submit_directory"]
        == default["HyperParameters"]["sagemaker_submit_directory"]
    )
    # A digest of an allowed repository is allowed too; the platform's own repository is not: local runs DLCs,
    # and that repository exists only in `repository` mode.
    pinned = f"763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training@sha256:{'a' * 64}"
    assert preview(definitions["local"], {"image": pinned}, quotas=QUOTAS).problems == []
    own = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/trainstack-local/training@sha256:{'a' * 64}"
    assert preview(definitions["local"], {"image": own}, quotas=QUOTAS).problems != []


def test_channels_can_be_dropped_or_replaced_to_give_the_seeds_two_channels(definitions) -> None:
    def channels(run_input: dict) -> dict[str, str]:
        request = preview(definitions["local"], run_input, quotas=QUOTAS).request
        _valid_request(request)
        return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request.get("InputDataConfig", [])}

    data = "s3://trainstack-local-data-123456789012-us-east-1"
    assert set(channels({})) == {"train", "val", "model"}
    assert set(channels({"channels": {"model": None}})) == {"train", "val"}
    seed = {"train123": "datasets/data-path-train/", "val123": f"{data}/datasets/data-path-val/"}
    assert channels({"channels": seed, "replace_channels": True}) == {
        "train123": f"{data}/datasets/data-path-train/",
        "val123": f"{data}/datasets/data-path-val/",
    }
    assert channels({"channels": {**seed, "train": None, "val": None, "model": None}}) == channels(
        {"channels": seed, "replace_channels": True}
    )
    # No channel at all: InputDataConfig is left out (SageMaker wants 1 to 20 entries when it is there).
    assert channels({"replace_channels": True}) == {}


def test_the_execution_role_pulls_exactly_the_allowed_image_repositories(synthesized) -> None:
    config = load_environment("dev")
    template = synthesized.template("dev", "training")
    [statement] = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PullTrainingImage"
    ]
    resources = json.dumps(statement["Resource"])
    for repository in config.image.allowed_dlc_repositories:
        assert f':ecr:us-west-2:763104351884:repository/{repository}"' in resources
    assert resources.count(":ecr:us-west-2:763104351884:") == len(config.image.allowed_dlc_repositories)


def test_all_problems_are_reported_together(definitions) -> None:
    problems = preview(
        definitions["local"], {"instance_count": 9, "volume_size_gb": -1, "colour": "x"}, quotas=QUOTAS
    ).problems
    assert len(problems) == 3


@pytest.mark.parametrize(
    "execution_name",
    ["a", "0f2c0e9e-8a3c-4c7a-9f1e-aaaaaaaaaaaa", "my_run.with:odd*chars" * 3, "x" * 80],
)
def test_job_name_is_short_safe_and_stable(definitions, execution_name: str) -> None:
    long_prefix = {"job_name_prefix": "trainstack-" + "a" * 19}  # 30 characters, the most allowed
    first = preview(definitions["local"], long_prefix, quotas=QUOTAS, execution_name=execution_name)
    again = preview(definitions["local"], long_prefix, quotas=QUOTAS, execution_name=execution_name)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", first.job_name), first.job_name
    assert first.job_name == again.job_name  # the same execution (a retried state) names the same job
    other = preview(
        definitions["local"],
        long_prefix,
        quotas=QUOTAS,
        execution_name=execution_name,
        start_time="2026-01-01T00:00:00.001Z",
    )
    assert other.job_name != first.job_name


def _warm(definitions, run_input: dict, warm_quota: int | None, pools: list[dict]) -> dict:
    quotas = {**QUOTAS, "warm_pool": _quota("warm_pool", warm_quota)}
    return preview(definitions["local"], run_input, quotas=quotas, pools=pools).warm_pool


def test_warm_pool_decisions(definitions) -> None:
    granted = _warm(definitions, {"keep_alive_seconds": 600}, 2, [])
    assert granted["granted"] == 600 and "headroom 2 covers 1" in granted["reason"]
    zero = _warm(definitions, {"keep_alive_seconds": 600}, 0, [])
    assert zero["granted"] == 0 and "is 0 in this account" in zero["reason"]
    missing = _warm(definitions, {"keep_alive_seconds": 600}, None, [])
    assert missing["granted"] == 0 and "no quota named" in missing["reason"]
    busy = [{"job": "other", "type": "ml.m5.xlarge", "count": 2, "status": "InUse"}]
    full = _warm(definitions, {"keep_alive_seconds": 600}, 2, busy)
    assert full["granted"] == 0 and full["retained"] == 2 and "would exceed it" in full["reason"]
    key = preview(definitions["local"], {"keep_alive_seconds": 600}, quotas=QUOTAS).pool_key
    reusable = [{"job": "previous", "type": "ml.m5.xlarge", "count": 1, "status": "Available", "key": key}]
    reuse = _warm(definitions, {"keep_alive_seconds": 600}, 1, reusable)
    assert reuse["granted"] == 600 and reuse["reusable_pool"] == "previous"
    # Same type and count but another attribute SageMaker compares: not reusable, so no headroom is freed.
    other_key = [{**reusable[0], "key": key.replace(",30,", ",31,")}]
    assert _warm(definitions, {"keep_alive_seconds": 600}, 1, other_key)["granted"] == 0
    other_type = [{"job": "gpu", "type": "ml.g5.2xlarge", "count": 4, "status": "Available"}]
    assert _warm(definitions, {"keep_alive_seconds": 600}, 1, other_type)["granted"] == 600
    assert _warm(definitions, {"keep_alive_seconds": 0}, 2, [])["reason"].startswith("not requested")


def test_quota_choice_conditions(definitions) -> None:
    states = definitions["local"]["States"]
    over_training, over_runtime = (c["Condition"] for c in states["CheckQuotas"]["Choices"])
    run = {"instance_count": 3, "max_runtime_seconds": 500000}
    assert evaluate(over_training, {}, {"run": run, "jobQuota": {"value": 2}}) is True
    assert evaluate(over_training, {}, {"run": run, "jobQuota": {"value": None}}) is False
    assert evaluate(over_runtime, {}, {"run": run, "quotas": {"max_runtime": {"value": 432000}}}) is True


def test_state_machine_logs_everything_traces_and_alarms(synthesized) -> None:
    template = synthesized.template("local", "training")
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert len(machines) == 2  # the pipeline and its pool cleanup
    for machine in machines:
        assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    log_groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(log_groups) == 2 and all("KmsKeyId" in group["Properties"] for group in log_groups)
    [topic] = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Topic"]
    assert "KmsMasterKeyId" in topic["Properties"]
    [alarm] = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    # Failed, aborted and timed-out executions: ExecutionsFailed alone counts none of the other two.
    metrics = {
        query["MetricStat"]["Metric"]["MetricName"] for query in alarm["Properties"]["Metrics"] if "MetricStat" in query
    }
    assert metrics == {"ExecutionsFailed", "ExecutionsAborted", "ExecutionsTimedOut"}
    [expression] = [q["Expression"] for q in alarm["Properties"]["Metrics"] if "Expression" in q]
    assert expression == "failed + aborted + timedOut"
    outputs = template["Outputs"]
    assert "console.aws.amazon.com/states" in json.dumps(outputs["ConsoleUrl"])
    assert json.loads(outputs["ExampleInput"]["Value"])["instance_type"] == "ml.m5.xlarge"


def test_state_machine_role_is_least_privilege(synthesized) -> None:
    template = synthesized.template("local", "training")
    names = ResourceNames.of(load_environment("local"))
    statements = {
        s.get("Sid", ""): s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    }
    for sid in (
        "CreateTrainingJobsWithThePlatformVolumeKey",
        "CreateTrainingJobsOnLocalStorage",
        "TagTrainingJobsAsThePlatform",
        "WatchAndStopTrainingJobs",
    ):
        assert statements[sid]["Resource"] == names.arn("sagemaker", "training-job/trainstack-*")
    passrole = statements["PassExecutionRole"]
    assert passrole["Resource"] == names.arn(
        "iam", f"role/{names.execution_role}", region=False
    ) or "Fn::GetAtt" in json.dumps(passrole["Resource"])
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert statements["SyncWithTrainingJobEvents"]["Resource"] == names.arn(
        "events", "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
    )
    assert "servicequotas:GetServiceQuota" in statements["ReadQuotasAndListJobs"]["Action"]


def test_code_package_is_reproducible_and_follows_the_code(tmp_path: Path) -> None:
    first = build_source_tarball(training_code_dir(), tmp_path / "a.tar.gz").read_bytes()
    second = build_source_tarball(training_code_dir(), tmp_path / "b.tar.gz").read_bytes()
    assert first == second
    source = tmp_path / "src"
    source.mkdir()
    (source / "run_train.py").write_text("print('v1')\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "x.pyc").write_bytes(b"cache")
    (source / "tests").mkdir()
    (source / "tests" / "test_x.py").write_text("")
    v1 = build_source_tarball(source, tmp_path / "v1.tar.gz")
    (source / "run_train.py").write_text("print('v2')\n")
    v2 = build_source_tarball(source, tmp_path / "v2.tar.gz")
    assert v1.read_bytes() != v2.read_bytes()
    import tarfile

    with tarfile.open(v2) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["run_train.py"]
    assert {(m.mtime, m.uid, m.uname) for m in members} == {(315532800, 0, "root")}


def test_two_synths_give_the_same_code_asset_hash(synthesized, tmp_path: Path) -> None:
    from aws_cdk import App

    from trainstack.platform.platform_stage import PlatformStage

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path), context=context)
    stage = PlatformStage(app, load_environment("local"))
    again = stage.synth().get_stack_by_name(stage.training.stack_name).template
    first = synthesized.template("local", "training")
    assert json.dumps(first["Outputs"]["CodePackageUri"]) == json.dumps(again["Outputs"]["CodePackageUri"])


def test_a_run_without_channels_sends_no_input_data_config() -> None:
    # SageMaker refuses an empty InputDataConfig; an environment may define no default channels.
    from trainstack.platform.constructs.create_training_job_state import TrainingJobTarget, request_expression
    from trainstack.platform.constructs.training_run_input import prepare_expression

    local = load_environment("local")
    config = local.model_copy(update={"training": local.training.model_copy(update={"channels": {}})})
    target = TrainingJobTarget(
        role_arn="arn:aws:iam::123456789012:role/trainstack-training",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/trainstack:1",
        code_uri="s3://code-bucket/sourcedir.tar.gz",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    context = {"Execution": {"Id": "x", "Name": "no-channels", "StartTime": "2026-01-01T00:00:00.000Z"}}
    here = {"input": {}, "context": context}
    run = evaluate(prepare_expression(config), here)
    variables = {"run": run, "jobName": "trainstack-1-nochannels", "warmPool": {"granted": 0}}
    request = evaluate(request_expression(config, target), here, variables)
    assert "InputDataConfig" not in request
    _valid_request(request)
    with_channel = evaluate(prepare_expression(config), {**here, "input": {"channels": {"train": "datasets/x/"}}})
    request = evaluate(request_expression(config, target), here, {**variables, "run": with_channel})
    assert [channel["ChannelName"] for channel in request["InputDataConfig"]] == ["train"]


# --- capacity: what SageMaker counts, pool matching, waiting --------------------------------------------------


def _described(request: dict, **changes: object) -> dict:
    """A DescribeTrainingJob answer for a job created with `request` (SageMaker echoes these fields)."""
    return {**json.loads(json.dumps(request)), "TrainingJobStatus": "Completed", **changes}


def test_pool_key_of_a_job_matches_the_request_that_would_reuse_it(definitions) -> None:
    definition = definitions["local"]
    result = preview(definition, {"keep_alive_seconds": 600}, quotas=QUOTAS)
    pool = held_instances(definition, _described(result.request, WarmPoolStatus={"Status": "Available"}))
    assert pool["key"] == result.pool_key and pool["status"] == "Available" and pool["spot"] is False
    # Subnets and security groups compare as sets, as SageMaker compares them.
    shuffled = json.loads(json.dumps(result.request))
    shuffled["VpcConfig"]["Subnets"].reverse()
    assert held_instances(definition, _described(shuffled))["key"] == result.pool_key
    for field, value in (
        ("EnableNetworkIsolation", True),
        ("RoleArn", "arn:aws:iam::123456789012:role/other"),
        ("EnableInterContainerTrafficEncryption", True),
    ):
        assert held_instances(definition, _described(result.request, **{field: value}))["key"] != result.pool_key
    resources = {**result.request["ResourceConfig"], "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/other"}
    assert held_instances(definition, _described(result.request, ResourceConfig=resources))["key"] != result.pool_key


def _capacity(definitions, run_input: dict, pools: list[dict], quota: int, **variables: object) -> dict:
    definition = definitions["local"]
    run = preview(definition, run_input, quotas=QUOTAS).run
    bindings = {
        "run": run,
        "jobQuota": {"value": quota, "code": "L-TEST", "name": "test quota"},
        "pools": pools,
        "warmPool": {"granted": 0},
        "capacityWaited": 0,
        **variables,
    }
    return evaluate(definition["States"]["DecideCapacity"]["Output"], {}, bindings)


def _held(status: str | None, job_status: str, count: int, *, spot: bool = False, type_: str = "ml.m5.xlarge") -> dict:
    return {"job": "j", "type": type_, "count": count, "status": status, "jobStatus": job_status, "spot": spot}


def test_capacity_counts_running_jobs_and_retained_pools_as_sagemaker_does(definitions) -> None:
    pool_of_one = [_held("Available", "Completed", 1)]
    short = _capacity(definitions, {"instance_count": 4}, pool_of_one, 4)
    assert short["fits"] is False and short["in_use"] == 1 and short["headroom"] == 3
    assert "with 1 instance(s) held by running jobs and warm pools; this run needs 4 and 3 are free" in short["reason"]
    assert "Waiting for running jobs or pools to end (0 of 3600 s waited)" in short["reason"]
    held = [
        _held(None, "InProgress", 2),
        _held("InUse", "InProgress", 1),  # running on a reused pool: counted once
        _held("Reused", "Completed", 1),  # handed over: no longer held
        _held("Terminated", "Completed", 3),
        _held(None, "Stopping", 1),
        _held("Available", "Completed", 2, type_="ml.g5.2xlarge"),  # another type's quota
        _held(None, "InProgress", 2, spot=True),  # spot jobs count against the spot quota only
    ]
    assert _capacity(definitions, {"instance_count": 1}, held, 4)["in_use"] == 4
    assert _capacity(definitions, {"spot": True, "keep_alive_seconds": 0}, held, 4)["in_use"] == 2
    # The pool this run takes over frees its own instances.
    reusing = _capacity(
        definitions,
        {"instance_count": 1},
        [_held("Available", "Completed", 1)] * 4,
        4,
        warmPool={"granted": 300, "reusable_pool": "j"},
    )
    assert reusing["fits"] is True and reusing["reused"] == 1
    gave_up = _capacity(definitions, {"capacity_wait_seconds": 0}, [_held(None, "InProgress", 4)], 4)
    assert gave_up["fits"] is False and "Gave up after 0 s (capacity_wait_seconds is 0)" in gave_up["reason"]
    assert _capacity(definitions, {}, [_held(None, "InProgress", 9)], None)["fits"] is True  # no quota known


def test_capacity_wait_backs_off_and_never_passes_the_limit(definitions) -> None:
    states = definitions["local"]["States"]
    wait = states["WaitingForCapacity"]
    steps = []
    waited, polls = 0, 0
    while waited < 100:
        bindings = {"run": {"capacity_wait_seconds": 100}, "capacityWaited": waited, "capacityPolls": polls}
        step = evaluate(wait["Seconds"], {}, bindings)
        assert evaluate(wait["Assign"]["capacityWaited"], {}, bindings) == waited + step
        steps.append(step)
        waited, polls = waited + step, polls + 1
    assert steps == [2, 4, 8, 16, 32, 38]
    assert {c["Next"] for c in states["HasCapacity"]["Choices"]} == {
        "BuildRequest",
        "WaitingForCapacity",
        "ContinueRun",
    }
    assert states["HasCapacity"]["Default"] == "CapacityUnavailable"
    [limit] = [c for c in states["Train"]["Catch"] if c["ErrorEquals"] == ["SageMaker.ResourceLimitExceededException"]]
    assert states[limit["Next"]]["Choices"][0]["Next"] == "WaitingForCapacity"


def test_the_longest_wait_is_about_a_thousand_looks_at_most_ten_minutes_apart(definitions) -> None:
    from trainstack.config import MAX_CAPACITY_WAIT_SECONDS
    from trainstack.platform.constructs.quota_check import MAX_LOOK_INTERVAL_SECONDS

    wait = definitions["local"]["States"]["WaitingForCapacity"]
    steps, waited, polls = [], 0, 0
    while waited < MAX_CAPACITY_WAIT_SECONDS:
        step = evaluate(
            wait["Seconds"],
            {},
            {
                "run": {"capacity_wait_seconds": MAX_CAPACITY_WAIT_SECONDS},
                "capacityWaited": waited,
                "capacityPolls": polls,
            },
        )
        steps.append(step)
        waited, polls = waited + step, polls + 1
    assert waited == MAX_CAPACITY_WAIT_SECONDS and max(steps) == MAX_LOOK_INTERVAL_SECONDS
    # Freed capacity is still seen within a minute while the wait is young (the first 6 minutes).
    assert all(step <= 60 for step in steps[: steps.index(60) + 6])
    assert 1000 <= len(steps) <= 1100, len(steps)


def _held_after_listing(definitions, listed: list[dict], cache: dict) -> list[dict]:
    counted = definitions["local"]["States"]["CountHeld"]["Assign"]["pools"]
    return evaluate(counted, {}, {"usageJobs": listed, "poolCache": cache})


def test_a_look_describes_only_jobs_it_has_not_described_and_takes_statuses_from_the_listing(definitions) -> None:
    states = definitions["local"]["States"]
    listed = [
        {"job": "a", "jobStatus": "Completed", "status": "Available"},
        {"job": "b", "jobStatus": "InProgress"},
        {"job": "a", "jobStatus": "Completed", "status": "Available"},  # listed by two filters
    ]
    cache = {"a": {"type": "ml.m5.xlarge", "count": 2, "spot": False, "key": "k"}}
    assert evaluate(states["DescribeUsage"]["Items"], {}, {"usageJobs": listed, "poolCache": cache}) == ["b"]
    assert evaluate(states["DescribeUsage"]["Items"], {}, {"usageJobs": listed[:1], "poolCache": cache}) == []
    described = [{"job": "b", "type": "ml.m5.xlarge", "count": 1, "spot": False, "key": "k2"}, {"job": "gone"}]
    cache = evaluate(states["DescribeUsage"]["Assign"]["poolCache"], {"result": described}, {"poolCache": cache})
    assert set(cache) == {"a", "b"}
    held = _held_after_listing(definitions, listed, cache)
    assert held == [
        {
            "job": "a",
            "type": "ml.m5.xlarge",
            "count": 2,
            "spot": False,
            "key": "k",
            "jobStatus": "Completed",
            "status": "Available",
        },
        {"job": "b", "type": "ml.m5.xlarge", "count": 1, "spot": False, "key": "k2", "jobStatus": "InProgress"},
    ]
    # A pool seen Available before and InUse now is counted as listed now, not as first described.
    assert (
        _held_after_listing(definitions, [{"job": "a", "jobStatus": "Completed", "status": "InUse"}], cache)[0][
            "status"
        ]
        == "InUse"
    )


def _continuation(**overrides) -> dict:
    name = "trainstack-local-llama-20261127060504123-0123456789"
    return {
        "run_name": name,
        "job_name": name,
        "checkpoint_name": name,
        "capacity_retries": 0,
        "capacity_waited": 7200,
        "capacity_polls": 40,
        "adopt_polls": 0,
        "warm_pool": {"granted": 0},
        "follow": False,
        "part": 1,
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "route"),
    [
        ({}, "ResolveQuotaCodes"),
        ({"follow": True, "adopt_polls": 600}, "FollowExistingJob"),
        (
            {"capacity_retries": 2, "job_name": "trainstack-local-llama-20261127060504123-0123456789-r2"},
            "ResolveQuotaCodes",
        ),
        ({"job_name": "trainstack-local-other-20261127060504123-0123456789"}, "InvalidContinuation"),
        ({"run_name": "trainstack-local-x-1-2", "job_name": "trainstack-local-x-1-2"}, "InvalidContinuation"),
        (
            {"capacity_retries": 9, "job_name": "trainstack-local-llama-20261127060504123-0123456789-r9"},
            "InvalidContinuation",
        ),
        ({"capacity_waited": 604801}, "InvalidContinuation"),
        ({"checkpoint_name": "../elsewhere"}, "InvalidContinuation"),
        ({"follow": "yes"}, "InvalidContinuation"),
    ],
)
def test_a_continued_run_goes_back_into_its_loop_only_with_what_continue_run_writes(
    definitions, overrides: dict, route: str
) -> None:
    states = definitions["local"]["States"]
    run = {"job_name_prefix": "trainstack-local-llama", "capacity_wait_seconds": 604800}
    bindings = {"continuation": _continuation(**overrides), "run": run}
    taken = next(
        (
            choice["Next"]
            for choice in states["IsContinuation"]["Choices"]
            if evaluate(choice["Condition"], {}, bindings)
        ),
        states["IsContinuation"]["Default"],
    )
    assert taken == route
    fresh = next(
        c["Next"] for c in states["IsContinuation"]["Choices"] if evaluate(c["Condition"], {}, {"continuation": False})
    )
    assert fresh == "ResumeWanted"


def test_a_continued_run_keeps_its_name_and_its_wait(definitions) -> None:
    states = definitions["local"]["States"]
    carried = _continuation(capacity_retries=1, job_name="trainstack-local-llama-20261127060504123-0123456789-r1")
    wrapped = {"trainstack_continuation": carried, "input": {"instance_count": 2}}
    assert evaluate(states["Start"]["Output"], {"input": wrapped}) == {"instance_count": 2}
    assert evaluate(states["Start"]["Output"], {"input": {"instance_count": 2}}) == {"instance_count": 2}
    continuation = evaluate(states["Start"]["Assign"]["continuation"], {"input": wrapped})
    context = {
        "Execution": {
            "Id": "arn:aws:states:us-east-1:123456789012:execution:m:part",
            "StartTime": "2026-12-01T00:00:00.000Z",
        }
    }
    named = {
        name: evaluate(
            expression, {"context": context}, {"continuation": continuation, "run": {"job_name_prefix": "x"}}
        )
        for name, expression in states["NameJob"]["Assign"].items()
    }
    assert named == {
        "runName": carried["run_name"],
        "jobName": carried["job_name"],
        "checkpointName": carried["checkpoint_name"],
        "capacityRetries": 1,
    }
    assigned = states["ResolveQuotaCodes"]["Assign"]
    assert evaluate(assigned["capacityWaited"], {}, {"continuation": continuation}) == 7200
    assert evaluate(assigned["capacityPolls"], {}, {"continuation": continuation}) == 40
    assert evaluate(assigned["capacityWaited"], {}, {"continuation": False}) == 0
    # A retry after following an adopted job starts a new wait.
    assert evaluate(assigned["capacityWaited"], {}, {"continuation": {**continuation, "follow": True}}) == 0


def test_capacity_wait_seconds_is_validated_and_defaults_from_the_environment(definitions) -> None:
    assert preview(definitions["local"], {}, quotas=QUOTAS).run["capacity_wait_seconds"] == 3600
    assert preview(definitions["local"], {"capacity_wait_seconds": 0}, quotas=QUOTAS).run["capacity_wait_seconds"] == 0
    problems = preview(definitions["local"], {"capacity_wait_seconds": -1}, quotas=QUOTAS).problems
    assert problems == ["capacity_wait_seconds: expected a whole number from 0 to 604800, got -1 [capacity-wait-range]"]
    jsonschema.validate({"capacity_wait_seconds": 60}, SCHEMA)


def _tasks_and_maps(states: dict, path: str = ""):
    for name, state in states.items():
        if state["Type"] in ("Task", "Map"):
            yield f"{path}{name}", state
        if state["Type"] == "Map":
            yield from _tasks_and_maps(state["ItemProcessor"]["States"], f"{path}{name}/")


def test_every_task_and_map_state_catches_its_errors(definitions) -> None:
    for env, definition in definitions.items():
        uncaught = [name for name, state in _tasks_and_maps(definition["States"]) if not state.get("Catch")]
        assert uncaught == [], f"{env}: no Catch on {uncaught}"


def test_the_capacity_states_hold_one_line_expressions(definitions) -> None:
    capacity_states = (
        "CountUsage",
        "ListUsagePage",
        "DescribeUsage",
        "DecideWarmPool",
        "DecideCapacity",
        "WaitingForCapacity",
    )
    text = json.dumps({name: definitions["local"]["States"][name] for name in capacity_states})
    assert "{%" in text and "\\n" not in text


def test_a_float_with_17_significant_digits_reaches_the_script_unchanged(definitions) -> None:
    values = {"pi": 3.141592653589793, "third": 1 / 3, "tiny": 7.872719471282574e-06, "lr": 0.002, "big": 1e300}
    request = preview(definitions["local"], {"hyperparameters": values}, quotas=QUOTAS).request
    for name, value in values.items():
        assert float(request["HyperParameters"][name]) == value, (name, request["HyperParameters"][name])
    assert request["HyperParameters"]["pi"] == "3.141592653589793"
    assert request["HyperParameters"]["lr"] == "0.002"


def test_executions_started_together_with_similar_names_get_different_job_names(definitions) -> None:
    same_time = "2026-01-01T00:00:00.000Z"
    names = {
        preview(definitions["local"], {}, quotas=QUOTAS, execution_name=name, start_time=same_time).job_name
        for name in ("cap-both-1-0123456789ab", "cap-both-2-0123456789ab")
    }
    assert len(names) == 2


def test_resume_from_takes_the_named_jobs_checkpoint_prefix(definitions) -> None:
    names = ResourceNames.of(load_environment("local"))
    find = definitions["local"]["States"]["FindResumePoint"]
    prefix = f"s3://{names.artifacts_bucket}/checkpoints/"
    run = {"resume_from": "trainstack-20260101000000000-abcdef0123-r1"}

    def checkpoint_name(described: dict) -> str | None:
        return evaluate(find["Assign"]["checkpointName"], {"result": described}, {"run": run})

    assert checkpoint_name({"CheckpointConfig": {"S3Uri": f"{prefix}trainstack-20260101000000000-abcdef0123/"}}) == (
        "trainstack-20260101000000000-abcdef0123"
    )
    assert checkpoint_name({"CheckpointConfig": {"S3Uri": "s3://elsewhere/checkpoints/x/"}}) is None
    assert checkpoint_name({}) is None
    problem = evaluate(find["Assign"]["resumeProblem"], {"result": {}}, {"run": run})
    assert problem.startswith("resume_from: training job trainstack-") and "(its CheckpointConfig is absent)" in problem
    assert preview(definitions["local"], {"resume_from": "x" * 64}, quotas=QUOTAS).problems == [
        "resume_from: expected the name of an earlier run or training job (up to 63 letters, digits and dashes), "
        f'got "{"x" * 64}" [resume-from-name]'
    ]


def _expressions(value: object):
    if isinstance(value, str) and value.startswith("{%"):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def test_every_jsonata_expression_of_the_definition_compiles(definitions) -> None:
    from trainstack.step_functions_jsonata import compile_expression

    for env, definition in definitions.items():
        for expression in _expressions(definition):
            try:
                compile_expression(expression.strip()[2:-2])
            except Exception as error:  # the parser's own message says where
                raise AssertionError(f"{env}: {error}: {expression[:200]}") from error


def test_every_deployed_jsonata_expression_is_on_one_line(synthesized) -> None:
    # asl-validator 4.0 refuses newlines inside {% %}; trainstack/platform/constructs/jsonata_text.py collapses them
    # at synth, for the pipeline and the pool cleanup alike.
    for env in ("local", "dev", "prod"):
        machines = _of_type(synthesized.template(env, "training"), "AWS::StepFunctions::StateMachine")
        assert len(machines) == 2
        for machine_id, machine in machines.items():
            definition = definition_from_template(machine["Properties"]["DefinitionString"])
            multi_line = [expression[:120] for expression in _expressions(definition) if "\n" in expression]
            assert not multi_line, f"{env} {machine_id}: {multi_line}"


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_aborted_and_timed_out_runs_start_the_pool_cleanup_as_a_role_that_may_only_start_it(synthesized) -> None:
    template = synthesized.template("local", "training")
    [rule] = _of_type(template, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    [(machine_id, _)] = [
        (k, r) for k, r in _of_type(template, "AWS::StepFunctions::StateMachine").items() if "PoolCleanup" in k
    ]
    [pipeline_id] = [k for k in _of_type(template, "AWS::StepFunctions::StateMachine") if k.startswith("PipelineState")]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": pipeline_id}]
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": machine_id}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine_id}}]


def test_pool_cleanup_role_stops_and_ends_pools_of_the_environment_s_jobs_only(synthesized) -> None:
    config = load_environment("local")
    template = synthesized.template("local", "training")
    [role_id] = [k for k in _of_type(template, "AWS::IAM::Role") if k.startswith("PipelinePoolCleanupRole")]
    granted = {
        (action, json.dumps(statement["Resource"]))
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"] and "DefaultPolicy" not in json.dumps(policy)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    jobs = json.dumps(ResourceNames.of(config).arn("sagemaker", f"training-job/{config.training.job_name_prefix}-*"))
    for action in ("sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:UpdateTrainingJob"):
        assert (action, jobs) in granted
    assert ("sagemaker:ListTrainingJobs", '"*"') in granted
    assert not [a for a, _ in granted if a.startswith("sagemaker:Create") or a == "iam:PassRole"]


def test_pool_cleanup_finds_the_run_by_its_execution_whatever_its_prefix(synthesized) -> None:
    """The run's suffix from the status-change event (epoch-millisecond startDate) ends the job name the pipeline
    derived from its context (ISO StartTime), whatever the run's job_name_prefix; a continued run's event carries
    its run name in its input. Evaluated with the embedded AWS's JSONata."""
    from trainstack.platform.constructs.pool_cleanup import cleanup_definition
    from trainstack.platform.constructs.training_run_input import JOB_NAME_EXPRESSION

    config = load_environment("local")
    states = cleanup_definition(config, "topic")["States"]
    arn = "arn:aws:states:us-east-1:123456789012:execution:trainstack-local-training:abc"
    event = {"detail": {"executionArn": arn, "startDate": 1795759504123, "status": "FAILED", "input": "{}"}}
    suffix = evaluate(states["Start"]["Assign"]["runSuffix"], {"input": event})
    own_prefix = f"{config.training.job_name_prefix}-llama"
    # AWS's context StartTime, and the embedded AWS's (microseconds, +00:00).
    for start_time in ("2026-11-27T06:05:04.123Z", "2026-11-27T06:05:04.123456+00:00"):
        context = {"Execution": {"Id": arn, "StartTime": start_time}}
        for prefix in (config.training.job_name_prefix, own_prefix):
            assert evaluate(JOB_NAME_EXPRESSION, {"context": context}, {"run": {"job_name_prefix": prefix}}) == (
                f"{prefix}-{suffix}"
            )
    assert suffix == "20261127060504123-" + suffix[-10:]

    run = f"{own_prefix}-{suffix}"
    summaries = [
        {"TrainingJobName": name}
        for name in (run, f"{run}-r1", f"{run}-r12", f"{run}x", f"{run}-r1x", f"other-{suffix}", f"{run}-r1-{suffix}")
    ]
    kept = evaluate(
        states["ListJobs"]["Assign"]["jobs"],
        {"result": {"TrainingJobSummaries": summaries}},
        {"jobs": [], "runSuffix": suffix},
    )
    assert kept == [run, f"{run}-r1", f"{run}-r12"]

    continued = {
        **event,
        "detail": {
            **event["detail"],
            "executionArn": arn + "-part1",
            "input": json.dumps({"trainstack_continuation": {"run_name": run}, "input": {}}),
        },
    }
    assert evaluate(states["Start"]["Assign"]["runSuffix"], {"input": continued}) == suffix
