"""Image: the training image URI every job runs, and the platform's ECR repository when jobs run from it.

The hardened repository (KMS, scan on push, immutable tags, lifecycle) exists only in `repository` mode, where
it holds the image the environment runs. In `dlc` mode jobs pull the Deep Learning Container from AWS's registry;
in `asset` mode `cdk deploy` pushes the built image to the CDK bootstrap's container-assets repository (CDK's
`DockerImageAsset` publishes only there, with the bootstrap's publishing role, whose ECR permissions name that
repository only). Copying it into our repository would take `cdk-ecr-deployment`, a Lambda-backed custom
resource the platform does not run; an empty hardened repository next to it protected nothing, so it is gone.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from trainstack.config import EnvironmentConfig, ImageMode, ResourceNames
from trainstack.package_data import training_code_dir


class ImageStack(Stack):
    """Exposes `.repository` (None unless `repository` mode), `.image_uri` and `.pull_repository_arns` (what the
    execution role may pull)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = ResourceNames.of(config)
        image = config.image

        self.repository: ecr.Repository | None = None
        self.pull_repository_arns: list[str] = []
        if image.mode is ImageMode.REPOSITORY and not image.uri:
            self.repository = ecr.Repository(
                self,
                "Repository",
                repository_name=names.repository,
                image_scan_on_push=True,
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=key,
                removal_policy=RemovalPolicy.RETAIN,
                lifecycle_rules=[
                    ecr.LifecycleRule(
                        description="expire untagged images",
                        tag_status=ecr.TagStatus.UNTAGGED,
                        max_image_age=Duration.days(image.untagged_image_expiry_days),
                    )
                ],
            )
            self.pull_repository_arns.append(self.repository.repository_arn)
            CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)

        if image.uri:
            self.image_uri = image.uri
            self.pull_repository_arns.append(_repository_arn_of(image.uri, self.partition))
        elif image.mode is ImageMode.DLC:
            self.image_uri = image.dlc_uri(config.region)
            self.pull_repository_arns.append(_repository_arn_of(self.image_uri, self.partition))
        elif self.repository is not None:
            self.image_uri = self.repository.repository_uri_for_tag(image.repository_tag)
        else:
            # Built by `cdk deploy` from training_code/Dockerfile FROM the configured DLC; the base image's
            # registry is a build argument so the Dockerfile stays region-neutral.
            asset = ecr_assets.DockerImageAsset(
                self,
                "TrainingImage",
                directory=str(training_code_dir()),
                file="Dockerfile",
                # An installed package holds the .pyc files pip compiled; the image, and its hash, are the sources'.
                exclude=["__pycache__"],
                build_args={"BASE_IMAGE": image.dlc_uri(config.region)},
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            self.image_uri = asset.image_uri
            self.pull_repository_arns.append(asset.repository.repository_arn)

        # Images a run may choose by its `image` input (config `image.allowed_dlc_repositories`).
        for repository in config.image.allowed_dlc_repositories:
            arn = _repository_arn_of(f"{image.dlc_registry(config.region)}/{repository}", self.partition)
            if arn not in self.pull_repository_arns:
                self.pull_repository_arns.append(arn)

        # The image jobs of this environment run, where tools and people can look it up by name (and the
        # stack's one resource in the modes without a repository: CloudFormation refuses an empty stack).
        ssm.StringParameter(
            self,
            "TrainingImageUriParameter",
            parameter_name=f"/{config.prefix}/training-image-uri",
            string_value=self.image_uri,
            description=f"trainstack {config.name}: the training image every job runs",
        )
        CfnOutput(self, "TrainingImageUri", value=self.image_uri)


def _repository_arn_of(image_uri: str, partition: str) -> str:
    """`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG` -> the repository's ARN, for a scoped pull policy."""
    registry, _, rest = image_uri.partition("/")
    repository = rest.split("@")[0].split(":")[0]
    account, _, _, region, *_ = registry.split(".")
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
