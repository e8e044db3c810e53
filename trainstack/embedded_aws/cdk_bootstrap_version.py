"""Gap: stacks synthesized by the CDK declare `BootstrapVersion` from SSM `/cdk-bootstrap/hnb659fds/version`.

`cdk bootstrap` against moto creates that parameter through its template; a deploy without a prior
bootstrap (or after moto's state was reset) fails with "Unable to fetch parameters". Seeding it keeps
`cdk deploy` working on a fresh endpoint. The value mirrors the bootstrap template of the pinned CLI
closely enough for the CDK's "bootstrap version >= 6" check.
"""

from __future__ import annotations

from typing import Any

PARAMETER_NAME = "/cdk-bootstrap/hnb659fds/version"
# The CDK's CheckBootstrapVersion rule requires at least 6; the pinned CLI's template is newer.
SEED_VERSION = "30"


def seed(ssm: Any) -> None:
    """Create the parameter unless `cdk bootstrap` already did."""
    try:
        ssm.get_parameter(Name=PARAMETER_NAME)
    except ssm.exceptions.ParameterNotFound:
        ssm.put_parameter(Name=PARAMETER_NAME, Value=SEED_VERSION, Type="String")
