"""The delivery pipeline (CDK Pipelines): the app's environments deployed in a declared order across accounts.

Each stage waits for the one before it and is gated by the synth (the platform's stages fail it on any
unacknowledged cdk-nag finding), the unit suite on the source, a manual approval where the stage asks for one,
and after the deploy the smoke where the environment allows spending (`pipeline.yaml`, trainstack.delivery_config).
Artifacts are encrypted with a KMS key other accounts may use (`cross_account_keys`): each target account runs
`cdk bootstrap --trust <pipeline account>` first (`trainstack bootstrap` prints the lines).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from aws_cdk import Environment, Stack, Stage, Validations, pipelines
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from trainstack.config import EnvironmentConfig
from trainstack.delivery_config import CodeCommitSource, ConnectionSource, PipelineConfig, S3Source, StageConfig
from trainstack.platform.nag import acknowledge
from trainstack.platform.platform_stage import PlatformStage

StageFactory = Callable[[Construct, EnvironmentConfig], Stage]

# The names the steps get in the pipeline: tests and the pipeline's own readers rely on them.
UNIT_TESTS_STEP = "UnitTests"
APPROVAL_STEP = "Approve"
SMOKE_STEP = "Smoke"


def _source(scope: Construct, config: PipelineConfig) -> pipelines.CodePipelineSource:
    source = config.source
    if isinstance(source, ConnectionSource):
        return pipelines.CodePipelineSource.connection(
            source.repository, source.branch, connection_arn=source.connection_arn
        )
    if isinstance(source, CodeCommitSource):
        repository = codecommit.Repository.from_repository_name(scope, "SourceRepository", source.repository)
        return pipelines.CodePipelineSource.code_commit(repository, source.branch)
    assert isinstance(source, S3Source)
    bucket = s3.Bucket.from_bucket_name(scope, "SourceBucket", source.bucket)
    return pipelines.CodePipelineSource.s3(bucket, source.object_key)


class DeliveryPipelineStack(Stack):
    """The pipeline account's stack. `stage_factory` builds one environment's Stage (default: `PlatformStage`); a
    team passes its own to add stacks of its own to every environment. `.stages` holds them in deploy order."""

    def __init__(
        self,
        scope: Construct,
        config: PipelineConfig,
        environments: Sequence[EnvironmentConfig],
        stage_factory: StageFactory = PlatformStage,
    ) -> None:
        super().__init__(
            scope, config.name, stack_name=config.name, env=Environment(account=config.account, region=config.region)
        )
        source = _source(self, config)
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=config.name,
            cross_account_keys=True,
            enable_key_rotation=True,
            synth=pipelines.ShellStep(
                "Synth",
                input=source,
                install_commands=config.synth.install_commands,
                commands=config.synth.commands,
            ),
        )
        self.stages: list[Stage] = []
        for stage_config, environment in zip(config.stages, config.environments(list(environments)), strict=True):
            stage = stage_factory(self, environment)
            gates, smoke = self._gates(config, stage_config, source), self._smoke(stage_config, source)
            self.pipeline.add_stage(stage, pre=gates, post=smoke)
            self.stages.append(stage)
        self.pipeline.build_pipeline()
        _acknowledge_pipeline_findings(self.pipeline)
        Validations.of(self).add_plugins(AwsSolutionsChecks(self))

    @staticmethod
    def _gates(
        config: PipelineConfig, stage: StageConfig, source: pipelines.CodePipelineSource
    ) -> list[pipelines.Step]:
        tests = pipelines.ShellStep(UNIT_TESTS_STEP, input=source, commands=config.test_commands)
        if not stage.manual_approval:
            return [tests]
        approval = pipelines.ManualApprovalStep(
            APPROVAL_STEP, comment=f"Deploy {stage.environment}: the unit suite passed on this source."
        )
        # A person approves a change the tests already passed, not one they may still fail.
        approval.add_step_dependency(tests)
        return [tests, approval]

    @staticmethod
    def _smoke(stage: StageConfig, source: pipelines.CodePipelineSource) -> list[pipelines.Step]:
        if stage.smoke_role_arn is None:
            return []
        # The CodeBuild project's own credentials (EcsContainer) assume the environment's smoke role.
        return [
            pipelines.CodeBuildStep(
                SMOKE_STEP,
                # The app's config/ names the environment; its requirements.txt brings trainstack.
                input=source,
                install_commands=["pip install -r requirements.txt"],
                commands=[
                    f"aws configure set profile.smoke.role_arn {stage.smoke_role_arn}",
                    "aws configure set profile.smoke.credential_source EcsContainer",
                    f"AWS_PROFILE=smoke python -m trainstack.smoke --env {stage.environment}",
                ],
                role_policy_statements=[
                    iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[stage.smoke_role_arn])
                ],
            )
        ]


def _acknowledge_pipeline_findings(pipeline: pipelines.CodePipeline) -> None:
    """Findings on constructs CDK Pipelines creates and configures itself, each acknowledged on the construct where
    it arises. The IAM5 ids are read off the policies CDK Pipelines built, rendered as cdk-nag renders them; only
    its own wildcard grants exist there (the smoke's one statement names a single role)."""
    for construct in pipeline.node.find_all():
        if not (isinstance(construct, iam.Policy) and construct.node.id == "DefaultPolicy"):
            continue
        cfn = construct.node.default_child
        assert isinstance(cfn, iam.CfnPolicy)
        for finding in _wildcard_findings(cfn):
            acknowledge(
                construct,
                finding,
                "CDK Pipelines' own grant to the role of one of its actions or CodeBuild projects: the artifact "
                "bucket's objects, its KMS key, the project's log streams and report groups, and the bootstrap "
                "roles the self-mutation and asset steps assume",
            )
    # The artifact bucket, and in each other region a stage deploys to, CodePipeline's replication bucket.
    buckets = [pipeline.pipeline.artifact_bucket]
    buckets += [support.replication_bucket for support in pipeline.pipeline.cross_region_support.values()]
    for bucket in buckets:
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "a bucket CDK Pipelines creates for its artifacts: KMS-encrypted with the pipeline's key, public "
            "access blocked, reached only by the pipeline's roles; CloudTrail records their reads and writes",
        )


def _wildcard_findings(cfn: iam.CfnPolicy) -> list[str]:
    """The AwsSolutions-IAM5 finding ids of a policy's allowed wildcard actions and resources."""
    document = Stack.of(cfn).resolve(cfn.policy_document)
    findings: list[str] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if "*" in action:
                findings.append(f"AwsSolutions-IAM5[Action::{action}]")
        for resource in resources if isinstance(resources, list) else [resources]:
            rendered = _render(resource)
            if "*" in rendered:
                findings.append(f"AwsSolutions-IAM5[Resource::{rendered}]")
    return list(dict.fromkeys(findings))


def _render(value: Any) -> str:
    """A resolved resource as cdk-nag names it in a finding: `<LogicalId>` for a Ref, `<LogicalId.Attr>` for a
    GetAtt, the parts of an Fn::Join joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if "*" not in json.dumps(value):
        return ""  # no wildcard, no finding, whatever cdk-nag would call it
    raise ValueError(f"a wildcard policy resource cdk-nag may name differently: {value!r}")
