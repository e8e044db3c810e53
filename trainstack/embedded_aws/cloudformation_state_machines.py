"""Gap: state machines created by CloudFormation land in moto's non-executing Step Functions store.

`StateMachine.create_from_cloudformation_json` writes to `stepfunctions_backends`, while StartExecution
(with `execute_state_machine` on) reads `stepfunctions_parser_backends`: a deployed machine is then
"does not exist" to StartExecution. We enable execution and point the CloudFormation code path at the
executing store, so a deployed definition is parsed (and rejected if invalid) like on AWS.
"""

from __future__ import annotations

from moto.core.config import default_user_config
from moto.stepfunctions import models as moto_sfn_models
from moto.stepfunctions.parser.models import stepfunctions_parser_backends


def apply() -> None:
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    # The CloudFormation hooks look the name up in their module at call time.
    moto_sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
