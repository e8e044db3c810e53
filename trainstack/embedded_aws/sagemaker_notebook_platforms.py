"""Gap: moto's SageMaker ignores a notebook instance's `PlatformIdentifier`, so it creates any platform.

AWS no longer creates or restarts Amazon Linux 2 notebook instances since 2026-07-01 (SageMaker Developer Guide,
"Amazon Linux 2 notebook instances"), nor Amazon Linux 1 ones. We refuse CreateNotebookInstance (the API and
CloudFormation's `AWS::SageMaker::NotebookInstance`) and StartNotebookInstance on such a platform with
ValidationException, from the same table synth checks (`trainstack.config.NOTEBOOK_PLATFORMS`), so a template
that names one fails the embedded deploy too. The message is ours: we found no published text of AWS's.
An absent `PlatformIdentifier` is botocore's documented default, `notebook-al2023-v1`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeSagemakerNotebookInstance, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from trainstack.config import notebook_platform_problem

DEFAULT_PLATFORM = "notebook-al2023-v1"
_original_response = SageMakerResponse.create_notebook_instance
_original_cloudformation = FakeSagemakerNotebookInstance.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
_original_start = SageMakerModelBackend.start_notebook_instance


def check_platform(identifier: str | None) -> str:
    platform = identifier or DEFAULT_PLATFORM
    problem = notebook_platform_problem(platform, dt.datetime.now(dt.UTC).date())
    if problem:
        raise ValidationError(message=problem)
    return platform


def _remember(backend: Any, name: str, platform: str) -> None:
    backend.get_notebook_instance(name).platform_identifier = platform


def _create_notebook_instance(self: SageMakerResponse) -> Any:
    platform = check_platform(self._get_param("PlatformIdentifier"))
    answer = _original_response(self)
    _remember(self.sagemaker_backend, self._get_param("NotebookInstanceName"), platform)
    return answer


def _create_from_cloudformation_json(
    cls: type[FakeSagemakerNotebookInstance],
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> FakeSagemakerNotebookInstance:
    platform = check_platform(cloudformation_json.get("Properties", {}).get("PlatformIdentifier"))
    notebook = _original_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    notebook.platform_identifier = platform
    return notebook


def _start_notebook_instance(self: SageMakerModelBackend, notebook_instance_name: str) -> None:
    check_platform(getattr(self.get_notebook_instance(notebook_instance_name), "platform_identifier", None))
    _original_start(self, notebook_instance_name)


def apply() -> None:
    SageMakerResponse.create_notebook_instance = _create_notebook_instance  # type: ignore[method-assign]
    FakeSagemakerNotebookInstance.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign]
        _create_from_cloudformation_json
    )
    SageMakerModelBackend.start_notebook_instance = _start_notebook_instance  # type: ignore[method-assign]
