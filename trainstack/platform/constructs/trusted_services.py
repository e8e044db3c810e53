"""Who may assume the platform's roles: the AWS service, and, where AWS documents that the service sends them
when it assumes a role, the confused-deputy conditions (aws:SourceArn, aws:SourceAccount).

A condition the service does not send stops every use of the role, so each is here only on AWS's word:
- SageMaker training jobs: "Cross-Service Confused Deputy Prevention for SageMaker Training Jobs" in the SageMaker
  Developer Guide (https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html)
  shows the execution role's trust policy with `ArnLike aws:SourceArn arn:aws:sagemaker:<region>:<account>:
  training-job/*` ("you can replace [it] with the full ARN of one specific training job"), and no
  aws:SourceAccount ("because the account number is in the ARN").
- Step Functions: "Prevent cross-service confused deputy issue" in "Creating an IAM role for your state machine"
  (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html) shows the state machine
  role's trust policy with `ArnLike aws:SourceArn arn:aws:states:<region>:<account>:stateMachine:*` and
  `StringEquals aws:SourceAccount`.
- SageMaker notebook instances: the same SageMaker page has sections for training, processing, batch transform,
  inference, Studio and more, but none for notebook instances; it does not say what a notebook instance sends,
  so the notebook role trusts sagemaker.amazonaws.com without conditions.
- EventBridge targets' roles (made by CDK's SfnStateMachine target): left as CDK makes them.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from trainstack.config import ResourceNames

SAGEMAKER = "sagemaker.amazonaws.com"
STEP_FUNCTIONS = "states.amazonaws.com"


def training_jobs(names: ResourceNames, job_pattern: str) -> iam.IPrincipal:
    """SageMaker, for the environment's training jobs (`job_pattern`: `training-job/<prefix>-*`) only."""
    return iam.ServicePrincipal(
        SAGEMAKER, conditions={"ArnLike": {"aws:SourceArn": names.arn("sagemaker", job_pattern)}}
    )


def state_machine(names: ResourceNames, state_machine_name: str) -> iam.IPrincipal:
    """Step Functions, for the one named state machine of this account (its ARN is known before it exists)."""
    return iam.ServicePrincipal(
        STEP_FUNCTIONS,
        conditions={
            "ArnLike": {"aws:SourceArn": names.arn("states", f"stateMachine:{state_machine_name}")},
            "StringEquals": {"aws:SourceAccount": names.account},
        },
    )


def notebook_instance() -> iam.IPrincipal:
    """SageMaker, without conditions: AWS documents none for notebook instances (see the module's docstring)."""
    return iam.ServicePrincipal(SAGEMAKER)


def studio_user() -> iam.IPrincipal:
    """SageMaker, without conditions, for a Studio user profile's execution role: a confused-deputy condition
    that Studio does not send would stop every app of the profile, and we have not seen which it sends."""
    return iam.ServicePrincipal(SAGEMAKER)
