"""Environment files: the shipped ones load, and every kind of mistake names the file and the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainstack.config import (
    S3_PREFIX_LISTS,
    ConfigError,
    EnvironmentConfig,
    ImageMode,
    NetworkMode,
    ResourceNames,
    environment_names,
    load_environment,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"


def _local_data() -> dict:
    return yaml.safe_load((CONFIG_DIR / "local.yaml").read_text())


def _write(tmp_path: Path, data: object, name: str = "local") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_environments_load() -> None:
    assert {"local", "dev", "prod"} <= set(environment_names())
    local = load_environment("local")
    assert local.embedded and local.quotas is not None
    assert local.training.max_runtime_seconds == 2 * 24 * 3600  # the seed's max_run
    prod = load_environment("prod")
    assert prod.network.mode is NetworkMode.EXISTING
    assert prod.image.mode is ImageMode.ASSET
    assert prod.permissions_boundary_arn


def test_the_s3_prefix_list_is_the_regions_from_the_table(tmp_path: Path) -> None:
    """An environment in a checked region needs no prefix-list id; the shipped ones name the table's."""
    for name in environment_names():
        config = load_environment(name)
        if config.network.mode is not NetworkMode.NONE:
            assert config.network.s3_prefix_list_id == S3_PREFIX_LISTS[config.region], name
    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    del data["network"]["s3_prefix_list_id"]
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(data))
    assert load_environment("dev", tmp_path).network.s3_prefix_list_id == "pl-68a54001"


def test_dlc_uri_uses_the_regions_registry() -> None:
    config = load_environment("dev")
    assert config.image.dlc_uri("us-west-2").startswith("763104351884.dkr.ecr.us-west-2.amazonaws.com/")
    assert config.image.dlc_uri("me-south-1").startswith("217643126080.dkr.ecr.me-south-1.amazonaws.com/")
    assert config.image.dlc_uri("cn-north-1").endswith(
        ".amazonaws.com.cn/" + config.image.dlc_repository + ":" + config.image.dlc_tag
    )


def test_allowed_image_repositories_are_the_platforms_and_the_configured_dlcs() -> None:
    # The platform's own repository exists only in `repository` mode (trainstack/platform/image_stack.py): never
    # elsewhere.
    assert load_environment("local").allowed_image_repositories == [
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training",  # the dlc-mode default
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training",
    ]
    # asset mode: the default image is built; only the listed DLCs.
    dev = load_environment("dev")
    assert dev.allowed_image_repositories == [
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-pytorch-training",
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training",
    ]
    repository_mode = dev.model_copy(update={"image": dev.image.model_copy(update={"mode": ImageMode.REPOSITORY})})
    assert repository_mode.allowed_image_repositories[0] == (
        "111111111111.dkr.ecr.us-west-2.amazonaws.com/trainstack-dev/training"
    )


def test_resource_names_fit_s3_and_carry_account_and_region() -> None:
    names = ResourceNames.of(load_environment("dev"))
    assert names.data_bucket == "trainstack-dev-data-111111111111-us-west-2"
    assert names.bucket_arn(names.data_bucket, "*") == "arn:aws:s3:::trainstack-dev-data-111111111111-us-west-2/*"
    cn = ResourceNames(prefix="p-x", account="111111111111", region="cn-north-1")
    assert cn.arn("logs", "log-group:x") == "arn:aws-cn:logs:cn-north-1:111111111111:log-group:x"


@pytest.mark.parametrize(
    ("mutate", "field", "expected"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown field"),
        (lambda d: d.update(account="12345"), "account", "should match pattern"),
        (lambda d: d.update(region="mars-1"), "region", "should match pattern"),
        (
            lambda d: d["training"].update(keep_alive_seconds=7200),
            "training.keep_alive_seconds",
            "less than or equal to 3600",
        ),
        (lambda d: d["training"].update(instance_type="m5.xlarge"), "training.instance_type", "should match pattern"),
        (
            lambda d: d["training"].update(instance_type="ml.c6i.xlarge"),
            "training",
            "family 'c6i', which is not in allowed_instance_families",
        ),
        (
            # The storage table decides whether a job may name a volume key: an unclassified family is refused.
            lambda d: d["training"]["allowed_instance_families"].append("g7"),
            "training.allowed_instance_families",
            "['g7']: not in trainstack/data/instance_storage.json",
        ),
        (
            lambda d: d["training"].update(instance_count={"default": 5, "min": 1, "max": 4}),
            "training.instance_count",
            "min <= default <= max",
        ),
        (lambda d: d["training"].update(spot=True), "training", "not available with spot training"),
        (lambda d: d["network"].update(mode="none"), "(top level)", "notebook.enabled needs network.mode"),
        (lambda d: d["network"].update(mode="existing"), "network", "needs vpc_id"),
        (
            lambda d: d.update(region="sa-east-1") or d["network"].pop("s3_prefix_list_id"),
            "network",
            "needs s3_prefix_list_id",
        ),
        (
            lambda d: d["network"].update(s3_prefix_list_id="pl-68a54001"),
            "(top level)",
            "pl-68a54001 is not com.amazonaws.us-east-1.s3 (pl-63a5400a)",
        ),
        (lambda d: d["network"].update(s3_prefix_list_id="s3"), "network.s3_prefix_list_id", "should match pattern"),
        (
            lambda d: d["network"].update(
                mode="existing",
                vpc_id="vpc-0123456789abcdef0",
                subnet_ids=["subnet-0123456789abcdef0"],
                availability_zones=["us-east-1a"],
            ),
            "network",
            "needs endpoint_security_group_ids",
        ),
        (
            lambda d: d["network"].update(
                mode="existing",
                vpc_id="vpc-0123456789abcdef0",
                subnet_ids=["subnet-0123456789abcdef0"],
                availability_zones=["us-east-1a"],
                endpoint_security_group_ids=["sg-0123456789abcdef0"],
                endpoint_services=["sagemaker.api", "ecr.api", "ecr.dkr", "logs", "monitoring", "sts", "kms"],
            ),
            "network",
            "endpoint_services lacks sagemaker.runtime, states, servicequotas",
        ),
        (lambda d: d["network"].update(mode="peered"), "network.mode", "'none', 'create' or 'existing'"),
        (lambda d: d.update(prefix="a" * 32), "(top level)", "exceed S3's 63 characters"),
        (lambda d: d["image"].update(mode="asset"), "(top level)", "needs Docker"),
        (
            lambda d: d["image"].update(allowed_dlc_repositories=["PyTorch-Training"]),
            "image.allowed_dlc_repositories.0",
            "should match pattern",
        ),
        (lambda d: d["training"]["channels"].update({"bad name!": {"prefix": "x/"}}), "training.channels", "bad name!"),
        (lambda d: d["quotas"]["instances"].update({"p4de": {"training_job_usage": 1}}), "quotas.instances", "'p4de'"),
        (lambda d: d.pop("tags"), "tags", "required field is missing"),
        (lambda d: d["tags"].update(team=""), "tags.team", "at least 1 character"),
        (
            lambda d: d.update(permissions_boundary_arn="arn:aws:iam::aws:policy/Admin"),
            "permissions_boundary_arn",
            "should match pattern",
        ),
        # An MLflow App (mlflow-app/...) or a server URL is not a tracking server ARN (botocore's pattern).
        (
            lambda d: d["training"].update(
                mlflow_tracking_server_arn="arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-1"
            ),
            "training.mlflow_tracking_server_arn",
            "should match pattern",
        ),
        (
            lambda d: d["training"].update(
                mlflow_tracking_server_arn="https://t-abc.us-east-1.experiments.sagemaker.aws"
            ),
            "training.mlflow_tracking_server_arn",
            "should match pattern",
        ),
        # Another account's or region's server would take the environment's runs out of it.
        (
            lambda d: d["training"].update(
                mlflow_tracking_server_arn="arn:aws:sagemaker:us-east-1:210987654321:mlflow-tracking-server/team"
            ),
            "(top level)",
            "training.mlflow_tracking_server_arn: expected a tracking server of this environment "
            "(arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/<name>)",
        ),
        (
            lambda d: d["training"].update(
                mlflow_tracking_server_arn="arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"
            ),
            "(top level)",
            "training.mlflow_tracking_server_arn: expected a tracking server of this environment",
        ),
    ],
)
def test_bad_environment_file_names_file_field_and_rule(tmp_path: Path, mutate, field: str, expected: str) -> None:
    data = _local_data()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_environment(path)
    message = str(error.value)
    assert str(path) in message
    assert f"  {field}:" in message, message
    assert expected in message, message


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    data = _local_data()
    data["account"] = "x"
    data["training"]["volume_size_gb"] = 0
    with pytest.raises(ConfigError) as error:
        load_environment(_write(tmp_path, data))
    assert "  account:" in str(error.value) and "  training.volume_size_gb:" in str(error.value)


def test_not_yaml_and_not_a_mapping_and_wrong_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_environment(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_environment(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="must equal the file name 'other'"):
        load_environment(_write(tmp_path, _local_data(), name="other"))
    with pytest.raises(ConfigError, match=r"no such environment file \(known environments: .*local"):
        load_environment("staging")


def test_config_model_is_frozen() -> None:
    config = load_environment("local")
    with pytest.raises(Exception, match="frozen"):
        config.region = "eu-west-1"  # type: ignore[misc]
    assert isinstance(config, EnvironmentConfig)


def test_cdk_app_fails_synth_on_a_bad_file_with_the_message(tmp_path: Path) -> None:
    data = _local_data()
    data["training"]["max_runtime_seconds"] = 10
    path = _write(tmp_path, data)
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"env": str(path)}), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert f"trainstack: {path}: invalid environment configuration" in result.stderr
    assert "training.max_runtime_seconds: Input should be greater than or equal to 60" in result.stderr
    assert "Traceback" not in result.stderr
