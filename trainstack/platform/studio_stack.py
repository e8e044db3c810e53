"""Studio: a SageMaker Studio domain in the platform's VPC, its user profiles, and one execution role per profile.

VpcOnly: Studio's apps run in the platform's private subnets with its security group (which already allows
traffic to itself, as Studio's EFS mount needs) and reach AWS through the VPC's endpoints only. The domain's
storage is encrypted with the platform key. Each profile's role is granted by `grant_interactive_user`, the
notebook role's own grant, so a Studio user stands under exactly the notebook's training-job guard rails.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames, StudioAuthMode
from trainstack.platform.constructs import trusted_services
from trainstack.platform.constructs.interactive_user import grant_interactive_user
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.network_stack import NetworkStack
from trainstack.platform.storage_stack import StorageStack
from trainstack.platform.training_stack import TrainingStack


def studio_user_role_name(names: ResourceNames, profile: str) -> str:
    return f"{names.prefix}-studio-{profile}"


class StudioStack(Stack):
    """Exposes `.domain`, `.profiles` and `.roles` (profile name -> its execution role)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        network: NetworkStack,
        training: TrainingStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        assert config.studio is not None  # the stage makes this stack only for a `studio:` block
        names = ResourceNames.of(config)
        security_groups = [network.security_group.security_group_id]

        self.roles: dict[str, iam.Role] = {}
        for profile in config.studio.user_profiles:
            role = iam.Role(
                self,
                f"UserRole-{profile}",
                role_name=studio_user_role_name(names, profile),
                assumed_by=trusted_services.studio_user(),
                description=f"trainstack: Studio user profile {profile}, under the notebook's guard rails",
            )
            policy = ScopedPolicy(self, f"UserPolicy-{profile}", roles=[role])
            grant_interactive_user(policy, config, key=storage.key, training=training)
            self.roles[profile] = role

        sso = config.studio.auth_mode is StudioAuthMode.SSO
        first = self.roles[config.studio.user_profiles[0]]
        self.domain = sagemaker.CfnDomain(
            self,
            "Domain",
            domain_name=f"{config.prefix}-studio",
            auth_mode=config.studio.auth_mode.value,
            app_network_access_type="VpcOnly",
            vpc_id=network.vpc.vpc_id,
            subnet_ids=network.subnets.subnet_ids,
            kms_key_id=storage.key.key_arn,
            # Required by the API; every profile below names its own role, so this one is never used alone.
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=first.role_arn, security_groups=security_groups
            ),
        )
        self.profiles: dict[str, sagemaker.CfnUserProfile] = {}
        for profile, role in self.roles.items():
            self.profiles[profile] = sagemaker.CfnUserProfile(
                self,
                f"UserProfile-{profile}",
                domain_id=self.domain.attr_domain_id,
                user_profile_name=profile,
                # IAM Identity Center users sign in as the profile of their user name.
                single_sign_on_user_identifier="UserName" if sso else None,
                single_sign_on_user_value=profile if sso else None,
                user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                    execution_role=role.role_arn, security_groups=security_groups
                ),
            )

        CfnOutput(self, "DomainId", value=self.domain.attr_domain_id)
        CfnOutput(
            self,
            "DomainUrl",
            value=f"https://{config.region}.console.aws.amazon.com/sagemaker/home?region={config.region}#/studio",
        )
