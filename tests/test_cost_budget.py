"""Each environment's monthly budget on the platform's tags, as synthesized (issue #18)."""

from __future__ import annotations

import pytest
from test_platform_dashboard import ENVS, _environment_resources

from trainstack.config import load_environment


@pytest.mark.parametrize("env", ENVS)
def test_a_monthly_budget_on_the_platform_tags_where_configured(synthesized, env: str) -> None:
    config = load_environment(env)
    found = _environment_resources(synthesized, env, "AWS::Budgets::Budget")
    if config.budget is None:
        assert found == []
        return
    [budget] = found
    data = budget["Properties"]["Budget"]
    assert data["BudgetType"] == "COST" and data["TimeUnit"] == "MONTHLY"
    assert data["BudgetLimit"] == {"Amount": config.budget.monthly_usd, "Unit": "USD"}
    # All three forced tags at once (And), never the OR of CostFilters' values.
    assert "CostFilters" not in data
    assert data["FilterExpression"] == {
        "And": [
            {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}
            for key, value in config.platform_tags.items()
        ]
    }
    assert set(config.platform_tags) == {"trainstack:environment", "trainstack:team", "trainstack:cost-centre"}
    emails = config.budget.notification_emails or config.training.notification_emails
    assert emails, "a configured budget of this repository's environments notifies someone"
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert [n["Notification"]["Threshold"] for n in notifications] == config.budget.alert_percentages
    for notification in notifications:
        assert notification["Notification"]["NotificationType"] == "ACTUAL"
        assert notification["Subscribers"] == [{"SubscriptionType": "EMAIL", "Address": e} for e in emails]


def test_dev_and_prod_have_budgets_and_dev_has_studio() -> None:
    """The repository's own environments use the blocks (local runs on the embedded AWS, which has neither)."""
    dev, prod, local = (load_environment(env) for env in ("dev", "prod", "local"))
    assert dev.budget is not None and prod.budget is not None and local.budget is None
    assert dev.studio is not None and local.studio is None
