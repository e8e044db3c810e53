"""A delivery pipeline's configuration (`pipeline.yaml` beside an app's `cdk.json`): where the source comes from,
which environments it deploys in which order, and what gates each one.

    name: platform-delivery
    account: "333333333333"            # the pipeline (tooling) account; every stage's account trusts it
    region: us-east-1
    source: {kind: connection, repository: org/repo, branch: main,
             connection_arn: "arn:aws:codeconnections:us-east-1:333333333333:connection/..."}
    stages:
      - environment: dev
        smoke_role_arn: arn:aws:iam::111111111111:role/trainstack-smoke   # set: the smoke runs (and spends)
      - environment: prod
        manual_approval: true

The file lives outside `config/`, where every YAML file is an environment.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trainstack.config import _ACCOUNT_PATTERN, _NAME_PATTERN, _REGION_PATTERN, ConfigError, EnvironmentConfig

PIPELINE_FILE = "pipeline.yaml"
_ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceKind(StrEnum):
    CONNECTION = "connection"
    CODECOMMIT = "codecommit"
    S3 = "s3"


class ConnectionSource(_Strict):
    """GitHub, GitLab or Bitbucket through an AWS CodeConnections (CodeStar) connection of the pipeline account."""

    kind: Literal[SourceKind.CONNECTION]
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    branch: str = Field("main", min_length=1, max_length=255)
    connection_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]+$"
    )


class CodeCommitSource(_Strict):
    """A CodeCommit repository of the pipeline account."""

    kind: Literal[SourceKind.CODECOMMIT]
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    branch: str = Field("main", min_length=1, max_length=255)


class S3Source(_Strict):
    """A zip of the app in a versioned bucket of the pipeline account (no Git service reachable)."""

    kind: Literal[SourceKind.S3]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    object_key: str = Field(min_length=1, max_length=1024)


class SynthConfig(_Strict):
    """The synth step: the app's dependencies, then `cdk synth` (the platform's stages fail it on a cdk-nag
    finding without an acknowledgment)."""

    install_commands: list[str] = ["pip install -r requirements.txt", "npm ci"]
    commands: list[str] = ["npx cdk synth"]


class StageConfig(_Strict):
    environment: str = Field(pattern=_NAME_PATTERN, description="An environment file's name in config/.")
    manual_approval: bool = Field(False, description="A person approves before this stage deploys.")
    smoke_role_arn: str | None = Field(
        None,
        pattern=_ROLE_ARN_PATTERN,
        description=(
            "A role of the environment's account the smoke assumes after the deploy (`python -m trainstack.smoke`: "
            "a few tiny training jobs, a few cents). Unset: the environment does not allow spending, no smoke."
        ),
    )


class PipelineConfig(_Strict):
    name: str = Field(pattern=_NAME_PATTERN, description="The pipeline's name and its stack's.")
    account: str = Field(pattern=_ACCOUNT_PATTERN)
    region: str = Field(pattern=_REGION_PATTERN)
    source: Annotated[ConnectionSource | CodeCommitSource | S3Source, Field(discriminator="kind")]
    synth: SynthConfig = SynthConfig()
    test_commands: list[str] = Field(
        ["pip install -r requirements.txt", "python -m pytest -q"],
        min_length=1,
        description="The unit suite, run on the source before each stage deploys.",
    )
    stages: list[StageConfig] = Field(min_length=1, description="Deployed in this order, each after the one before.")

    @field_validator("stages")
    @classmethod
    def _distinct_stages(cls, stages: list[StageConfig]) -> list[StageConfig]:
        names = [stage.environment for stage in stages]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"each environment deploys once, repeated: {', '.join(repeated)}")
        return stages

    def environments(self, configs: list[EnvironmentConfig]) -> list[EnvironmentConfig]:
        """The stages' environments in deploy order; raises ConfigError for an unknown one, an embedded one, or a
        smoke role outside its environment's account."""
        by_name = {config.name: config for config in configs}
        ordered = []
        for index, stage in enumerate(self.stages):
            config = by_name.get(stage.environment)
            if config is None:
                known = ", ".join(sorted(by_name)) or "none"
                raise ConfigError(f"stages.{index}.environment: no environment {stage.environment!r} (known: {known})")
            if config.embedded:
                raise ConfigError(f"stages.{index}.environment: {config.name!r} runs on the embedded AWS, no account")
            match = re.match(_ROLE_ARN_PATTERN, stage.smoke_role_arn or "")
            if match and match.group(1) != config.account:
                raise ConfigError(
                    f"stages.{index}.smoke_role_arn: expected a role of {config.name}'s account {config.account}, "
                    f"got {stage.smoke_role_arn}"
                )
            ordered.append(config)
        return ordered


def parse_pipeline(data: Any, source: str) -> PipelineConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(
            f"  {'.'.join(str(part) for part in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid pipeline configuration\n{lines}") from None


def load_pipeline(path: Path) -> PipelineConfig:
    if not path.is_file():
        raise ConfigError(f"{path}: no such pipeline file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_pipeline(data, str(path))
