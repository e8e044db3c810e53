"""Network: a private VPC with the endpoints training and the notebook need, or an existing VPC by id."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from trainstack.config import EnvironmentConfig, NetworkMode

# Interface endpoints a job or notebook without internet access needs: the SageMaker API (notebook
# starting jobs), ECR (image pull), CloudWatch Logs and metrics, STS, Step Functions and Service Quotas
# (the notebook and CLI start and inspect runs).
_INTERFACE_ENDPOINTS = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}


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
        self._cidr = network.cidr
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
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(network.cidr) if network.mode is NetworkMode.CREATE else ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "HTTPS to the VPC endpoints",
        )
        if network.mode is NetworkMode.CREATE:
            self._endpoints()

        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)

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

    def _endpoints(self) -> None:
        assert isinstance(self.vpc, ec2.Vpc)
        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnet_selection]
        )
        endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="trainstack VPC interface endpoints: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        # The configured CIDR, not the VPC's token: cdk-nag EC23 cannot evaluate an intrinsic.
        endpoint_sg.add_ingress_rule(ec2.Peer.ipv4(self._cidr), ec2.Port.tcp(443), "HTTPS from the VPC")
        for name, service in _INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnet_selection,
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
                open=False,
            )
