"""Network reachability over the synthesized templates: from the training subnets and security group, every
AWS service a job and the notebook call is reachable, and nothing else is.

A job in the platform's VPC has no internet route. It reaches S3 only through the gateway endpoint (a route in
its subnets' route tables, and an egress rule to the S3 prefix list: a rule to the VPC's CIDR does not cover
the gateway endpoint's public addresses), and every other service only through an interface endpoint placed in
its subnets whose security group admits HTTPS from the training group, which must allow HTTPS to it. This test
walks those links in the template the way VPC Reachability Analyzer would walk them in the account.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from trainstack.config import NetworkMode, load_environment

# What a training job (image pull, logs, metrics, KMS, its role's credentials) and the notebook (the SageMaker
# API to start jobs, the same data paths) need, as the suffix of the endpoint service name.
# What jobs and the notebook call without internet: the notebook reads quotas and starts runs (Step Functions).
INTERFACE_SERVICES = [
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "sts",
    "kms",
    "sagemaker.api",
    "states",
    "servicequotas",
]
HTTPS = 443
_CONFIGS = [load_environment(name) for name in ("local", "dev", "prod")]
CREATED = [c.name for c in _CONFIGS if c.network.mode is NetworkMode.CREATE]
EXISTING = [c.name for c in _CONFIGS if c.network.mode is NetworkMode.EXISTING]


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _ref(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def _covers_https(rule: dict) -> bool:
    if str(rule.get("IpProtocol")) == "-1":
        return True
    return rule.get("IpProtocol") == "tcp" and rule.get("FromPort", 0) <= HTTPS <= rule.get("ToPort", 65535)


def _training_group(template: dict) -> str:
    [group] = [
        k
        for k, v in _resources(template, "AWS::EC2::SecurityGroup").items()
        if v["Properties"]["GroupDescription"].startswith("trainstack training jobs")
    ]
    return group


def _rules(template: dict, group: str, direction: str) -> list[dict]:
    """Every ingress or egress rule of `group`: inline ones and separate AWS::EC2::SecurityGroup<Direction>."""
    inline_key = "SecurityGroupIngress" if direction == "Ingress" else "SecurityGroupEgress"
    rules = list(template["Resources"][group]["Properties"].get(inline_key, []))
    rules += [
        r["Properties"]
        for r in _resources(template, f"AWS::EC2::SecurityGroup{direction}").values()
        if _ref(r["Properties"]["GroupId"]) == group
    ]
    return rules


def _service_suffix(endpoint: dict) -> str:
    name = endpoint["Properties"]["ServiceName"]
    text = name if isinstance(name, str) else "".join(p if isinstance(p, str) else "" for p in name["Fn::Join"][1])
    return text.split(".", 3)[-1] if text.startswith("com.amazonaws.") else text


def _training_subnets(template: dict) -> set[str]:
    return {
        k
        for k, v in _resources(template, "AWS::EC2::Subnet").items()
        if {"Key": "aws-cdk:subnet-name", "Value": "training"} in v["Properties"].get("Tags", [])
    }


def reachability_problems(template: dict, vpc_cidr: str) -> list[str]:
    """One sentence per service a job in the training subnets and group cannot reach; [] when all are reachable."""
    group = _training_group(template)
    subnets = _training_subnets(template)
    egress = [r for r in _rules(template, group, "Egress") if _covers_https(r)]
    endpoints = _resources(template, "AWS::EC2::VPCEndpoint")
    problems: list[str] = []

    # S3: gateway endpoint on the route tables of every training subnet, and egress to its prefix list.
    tables = {
        _ref(a["Properties"]["RouteTableId"])
        for a in _resources(template, "AWS::EC2::SubnetRouteTableAssociation").values()
        if _ref(a["Properties"]["SubnetId"]) in subnets
    }
    gateways = [
        e
        for e in endpoints.values()
        if e["Properties"].get("VpcEndpointType") == "Gateway" and _service_suffix(e) == "s3"
    ]
    if not any(tables <= {_ref(t) for t in g["Properties"].get("RouteTableIds", [])} for g in gateways):
        problems.append("s3: no gateway endpoint routes the training subnets' route tables")
    if not any("DestinationPrefixListId" in r or r.get("CidrIp") == "0.0.0.0/0" for r in egress):
        problems.append("s3: the training security group allows no HTTPS to the S3 prefix list")

    # Interface endpoints: in the training subnets, a group that admits the training group, egress towards it.
    cidr = ipaddress.ip_network(vpc_cidr)
    for service in INTERFACE_SERVICES:
        candidates = [
            e
            for e in endpoints.values()
            if e["Properties"].get("VpcEndpointType", "Gateway") == "Interface" and _service_suffix(e) == service
        ]
        if not candidates:
            problems.append(f"{service}: no interface endpoint")
            continue
        reachable = False
        for endpoint in candidates:
            props = endpoint["Properties"]
            in_subnets = subnets <= {_ref(s) for s in props.get("SubnetIds", [])}
            for endpoint_group in (_ref(g) for g in props.get("SecurityGroupIds", [])):
                admits = any(
                    _covers_https(r)
                    and (
                        _ref(r.get("SourceSecurityGroupId")) == group
                        or ("CidrIp" in r and cidr.subnet_of(ipaddress.ip_network(r["CidrIp"])))
                    )
                    for r in _rules(template, endpoint_group, "Ingress")
                )
                allowed = any(
                    _ref(r.get("DestinationSecurityGroupId")) == endpoint_group
                    or ("CidrIp" in r and cidr.subnet_of(ipaddress.ip_network(r["CidrIp"])))
                    for r in egress
                )
                reachable = reachable or (in_subnets and admits and allowed)
        if not reachable:
            problems.append(f"{service}: the interface endpoint is not reachable over HTTPS from the training group")
    return problems


@pytest.mark.parametrize("env", CREATED)
def test_every_service_a_job_needs_is_reachable_from_the_training_subnets(synthesized, env: str) -> None:
    config = load_environment(env)
    assert reachability_problems(synthesized.template(env, "network"), config.network.cidr) == []


@pytest.mark.parametrize("env", CREATED)
def test_training_group_reaches_nothing_outside_the_vpc_but_s3(synthesized, env: str) -> None:
    template = synthesized.template(env, "network")
    for rule in _rules(template, _training_group(template), "Egress"):
        assert rule.get("CidrIp") != "0.0.0.0/0", rule
        assert "CidrIpv6" not in rule, rule


def test_reachability_check_notices_a_missing_prefix_list_rule_and_endpoint(synthesized) -> None:
    """The check itself can fail: drop the S3 egress rule and the logs endpoint from dev's template."""
    template = json.loads(json.dumps(synthesized.template("dev", "network")))
    group = template["Resources"][_training_group(template)]["Properties"]
    inline = group.get("SecurityGroupEgress", [])
    group["SecurityGroupEgress"] = [r for r in inline if "DestinationPrefixListId" not in r]
    for key, rule in list(_resources(template, "AWS::EC2::SecurityGroupEgress").items()):
        if "DestinationPrefixListId" in rule["Properties"]:
            del template["Resources"][key]
    for key, endpoint in list(_resources(template, "AWS::EC2::VPCEndpoint").items()):
        if _service_suffix(endpoint) == "logs":
            del template["Resources"][key]
    assert reachability_problems(template, load_environment("dev").network.cidr) == [
        "s3: the training security group allows no HTTPS to the S3 prefix list",
        "logs: no interface endpoint",
    ]


@pytest.mark.parametrize("env", EXISTING)
def test_existing_vpc_egress_goes_only_where_the_configuration_names(synthesized, env: str) -> None:
    """In an existing VPC the endpoints are the account's: egress reaches exactly the ones the config names."""
    network = load_environment(env).network
    template = synthesized.template(env, "network")
    group = _training_group(template)
    https_to = set()
    for rule in _rules(template, group, "Egress"):
        destination = _ref(rule.get("DestinationSecurityGroupId")) or rule.get("DestinationSecurityGroupId")
        if destination == group:
            continue  # between the nodes of one job
        assert rule.get("CidrIp") != "0.0.0.0/0" and _covers_https(rule), rule
        https_to.add(rule.get("DestinationPrefixListId") or destination or rule.get("CidrIp"))
    assert https_to == {network.s3_prefix_list_id, *network.endpoint_security_group_ids}
