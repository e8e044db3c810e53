"""Network: a private VPC with the endpoints training and the notebook need, or an existing VPC by id."""

from __future__ import annotations

from aws_cdk import CfnOutput, DefaultStackSynthesizer, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from trainstack.config import INTERFACE_ENDPOINT_SERVICES, EnvironmentConfig, NetworkMode, ResourceNames


class NetworkStack(Stack):
    """Exposes `.vpc`, `.subnets` (where jobs and the notebook run) and `.security_group`."""

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
        network = config.network
        if network.mode is NetworkMode.EXISTING:
            assert network.vpc_id is not None  # enforced by the config model
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=network.vpc_id,
                availability_zones=network.availability_zones,
                private_subnet_ids=network.subnet_ids,
            )
        else:
            self.vpc = self._private_vpc(config, key)

        if network.mode is NetworkMode.EXISTING:
            self.subnet_selection = ec2.SubnetSelection(subnets=self.vpc.private_subnets)
            self.subnets = self.vpc.select_subnets(subnets=self.vpc.private_subnets)
        else:
            self.subnet_selection = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.security_group = ec2.SecurityGroup(
            self,
            "TrainingSecurityGroup",
            vpc=self.vpc,
            description="trainstack training jobs and notebook: traffic between nodes of one job only",
            allow_all_outbound=False,
        )
        # Multi-node jobs talk to each other (NCCL, gloo); SageMaker requires the group to allow itself.
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_traffic(), "between job nodes")
        self.security_group.add_egress_rule(self.security_group, ec2.Port.all_traffic(), "between job nodes")
        # S3 through the gateway endpoint: its addresses are public S3 ones, reachable only by prefix list.
        assert network.s3_prefix_list_id is not None  # enforced by the config model
        self.security_group.add_egress_rule(
            ec2.Peer.prefix_list(network.s3_prefix_list_id), ec2.Port.tcp(443), "HTTPS to S3 (gateway endpoint)"
        )
        if network.mode is NetworkMode.CREATE:
            self._endpoints(config)
        else:
            # The account's interface endpoints, as the configuration names them; nothing else.
            for group_id in network.endpoint_security_group_ids:
                self.security_group.add_egress_rule(
                    ec2.Peer.security_group_id(group_id), ec2.Port.tcp(443), "HTTPS to the VPC's interface endpoints"
                )

        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        # What a notebook or SDK user puts in VpcConfig; the roles that create jobs require exactly these.
        CfnOutput(self, "SubnetIds", value=Fn.join(",", self.subnets.subnet_ids))
        CfnOutput(self, "SecurityGroupId", value=self.security_group.security_group_id)

    def _private_vpc(self, config: EnvironmentConfig, key: kms.IKey) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.network.cidr),
            max_azs=config.network.max_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="training", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.RETAIN,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        return vpc

    def _endpoints(self, config: EnvironmentConfig) -> None:
        assert isinstance(self.vpc, ec2.Vpc)
        gateway = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnet_selection]
        )
        for statement in s3_endpoint_policy(config):
            gateway.add_to_policy(statement)
        endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="trainstack VPC interface endpoints: HTTPS from the training security group",
            allow_all_outbound=False,
        )
        endpoint_sg.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "HTTPS from jobs and the notebook")
        self.security_group.add_egress_rule(endpoint_sg, ec2.Port.tcp(443), "HTTPS to the VPC interface endpoints")
        for name, service in INTERFACE_ENDPOINT_SERVICES.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=ec2.InterfaceVpcEndpointAwsService(service),
                subnets=self.subnet_selection,
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
                open=False,
            )
            # Only this account's principals may use the endpoint: stolen credentials of another account
            # cannot carry data out through it (a data-perimeter control).
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    sid="OnlyThisAccountsPrincipals",
                    principals=[iam.AnyPrincipal()],
                    actions=["*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:PrincipalAccount": config.account}},
                )
            )


def s3_endpoint_policy(config: EnvironmentConfig) -> list[iam.PolicyStatement]:
    """What S3 traffic from the training subnets may touch: the platform's buckets and the CDK asset bucket
    (the code package) as this account's principals, and the ECR layer bucket image pulls read from."""
    names = ResourceNames.of(config)
    assets = (
        DefaultStackSynthesizer.DEFAULT_FILE_ASSETS_BUCKET_NAME.replace(
            "${Qualifier}", DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
        .replace("${AWS::AccountId}", config.account)
        .replace("${AWS::Region}", config.region)
    )
    buckets = [names.data_bucket, names.artifacts_bucket, assets]
    return [
        iam.PolicyStatement(
            sid="PlatformBuckets",
            principals=[iam.AnyPrincipal()],
            actions=[
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:ListMultipartUploadParts",
                "s3:GetBucketLocation",
            ],
            resources=[arn for bucket in buckets for arn in (names.bucket_arn(bucket), names.bucket_arn(bucket, "*"))],
            conditions={"StringEquals": {"aws:PrincipalAccount": config.account}},
        ),
        # ECR serves image layers from this AWS-owned bucket through pre-signed URLs (Amazon ECR interface
        # VPC endpoints, "Minimum Amazon S3 bucket permissions for Amazon ECR"); DLC images pull the same way.
        iam.PolicyStatement(
            sid="EcrImageLayers",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[names.bucket_arn(f"prod-{config.region}-starport-layer-bucket", "*")],
        ),
    ]
