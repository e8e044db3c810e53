"""The team's alert topic: where its on-call hears about the environment, encrypted with a key of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from trainstack.config import EnvironmentConfig


class TeamAlertsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "Key", enable_key_rotation=True, description=f"{config.prefix} team alerts")
        self.topic = sns.Topic(
            self, "Topic", topic_name=f"{config.prefix}-team-alerts", master_key=key, enforce_ssl=True
        )
