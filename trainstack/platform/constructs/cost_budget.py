"""A monthly AWS Budgets cost budget for one environment, on the cost-allocation tags the platform forces.

Every resource the stage makes carries `trainstack:environment`, `trainstack:team` and `trainstack:cost-centre`
(platform_stage.py), and IAM refuses a training job without them at the platform's values
(create_training_job_state.py), so the three tags together select the environment's spend. The filter is
`FilterExpression` with `And` (the older `CostFilters` ORs the values of one key). Tags count only once they are
activated as cost-allocation tags in the payer account's Billing console (README, "Deploy").

Notifications go by email: the platform's SNS topic is encrypted with the platform key, which AWS Budgets could
publish to only with grants for budgets.amazonaws.com in the topic and key policies, across stacks.
"""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from trainstack.config import EnvironmentConfig


def tag_filter(config: EnvironmentConfig) -> budgets.CfnBudget.ExpressionProperty:
    return budgets.CfnBudget.ExpressionProperty(
        and_=[
            budgets.CfnBudget.ExpressionProperty(
                tags=budgets.CfnBudget.TagValuesProperty(key=key, values=[value], match_options=["EQUALS"])
            )
            for key, value in config.platform_tags.items()
        ]
    )


class CostBudget(Construct):
    """Exposes `.budget`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        budget = config.budget
        assert budget is not None  # made only for a `budget:` block
        emails = budget.notification_emails or config.training.notification_emails
        notifications = [
            budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type="ACTUAL",
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=[
                    budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email) for email in emails
                ],
            )
            for percent in budget.alert_percentages
        ]
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{config.prefix}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=budget.monthly_usd, unit="USD"),
                filter_expression=tag_filter(config),
            ),
            # A notification needs at least one subscriber: without an address the budget is only shown.
            notifications_with_subscribers=notifications if emails else None,
        )
