"""Gap: ASL names Service Quotas `servicequotas`; boto3 calls it `service-quotas`.

moto's Step Functions builds a boto3 client from the ARN's service name, so
`arn:aws:states:::aws-sdk:servicequotas:getServiceQuota` fails with UnknownServiceError. We add the
mapping, and the service error prefixes AWS uses in `aws-sdk` task errors (`ServiceQuotas.NoSuchResourceException`,
`SageMaker.ResourceNotFoundException`) so a Catch on those names matches.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as moto_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)

# ASL service name -> boto3 service name, where they differ.
BOTO_SERVICE_NAMES: dict[str, str] = {"servicequotas": "service-quotas"}
# ASL service name -> prefix of the error names Step Functions raises for it.
ERROR_PREFIXES: dict[str, str] = {"servicequotas": "ServiceQuotas", "sagemaker": "SageMaker", "sns": "Sns"}


def apply() -> None:
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(BOTO_SERVICE_NAMES)
    moto_aws_sdk._SERVICE_ERROR_NAMES.update(ERROR_PREFIXES)
