"""The page the platform team looks at: one CloudWatch dashboard per environment.

What each widget reads, and why that source:
- Runs by status, failed and aborted runs: Step Functions' own AWS/States execution metrics of the training state
  machine (ExecutionsStarted, -Succeeded, -Failed, -Aborted, -TimedOut).
- Instances held against each quota: SageMaker publishes no usage metric for its training instance quotas that we
  could confirm (AWS/Usage ResourceCount is documented for other services), and the platform publishes none. The
  pipeline counts them itself before every job (`DecideCapacity` in quota_check.py, whose output carries the quota
  code, its value and the instances held by running jobs and retained pools) and logs that output to its log
  group (level ALL with execution data), so a Logs Insights query reads the latest count per quota.
- Warm pools retained and their age: no metric exists; the training task's `.sync` output (DescribeTrainingJob)
  in the same log group names each job that ended with a keep-alive, its instance type and keep-alive. A pool is
  retained from that time (the row's timestamp) for at most its keep-alive, unless a run reuses it.
- Loss of recent jobs: SageMaker publishes each job's MetricDefinitions values (training_code/metrics.py) in the
  `/aws/sagemaker/TrainingJobs` namespace with a `Host` dimension (`<job>/algo-<n>`); a SEARCH over the
  environment's job-name prefix shows every recent job's loss curves.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from training_code.metrics import METRIC_NAMES
from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs.create_training_job_state import SYNC_RESOURCE

TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
LOSS_METRICS = tuple(name for name in METRIC_NAMES if name.endswith("_loss"))
RUN_STATUSES = ("Started", "Succeeded", "Failed", "Aborted", "TimedOut")

# Step Functions logs a state's output as a JSON string in `details.output`; the fields are parsed out of it.
QUOTA_QUERY = [
    'filter type = "PassStateExited" and details.name = "DecideCapacity"',
    'parse details.output /"quota_code":"(?<quota_code>[^"]*)"/',
    'parse details.output /"quota":(?<quota>[0-9.]+)/',
    'parse details.output /"in_use":(?<held>[0-9]+)/',
    "stats latest(held) as instances_held, latest(quota) as quota_value, max(@timestamp) as counted_at by quota_code",
]
WARM_POOL_QUERY = [
    f'filter type = "TaskSucceeded" and details.resource = "{SYNC_RESOURCE.rsplit(":", 1)[-1]}"'
    " and details.output like /KeepAlivePeriodInSeconds/",
    'parse details.output /"TrainingJobName":"(?<job>[^"]+)"/',
    'parse details.output /"InstanceType":"(?<instance_type>[^"]+)"/',
    'parse details.output /"KeepAlivePeriodInSeconds":(?<keep_alive_seconds>[0-9]+)/',
    "filter keep_alive_seconds > 0",
    "fields @timestamp as retained_since, job, instance_type, keep_alive_seconds",
    "sort retained_since desc",
    "limit 50",
]


class PlatformDashboard(Construct):
    """Exposes `.dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        state_machine: sfn.StateMachine,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        hour = Duration.hours(1)

        def runs(status: str) -> cloudwatch.Metric:
            return state_machine.metric(f"Executions{status}", statistic="Sum", period=hour, label=status)

        loss = [
            cloudwatch.MathExpression(
                expression=(
                    f'SEARCH(\'{{{TRAINING_METRICS_NAMESPACE},Host}} MetricName="{name}" '
                    f"Host=\"{config.training.job_name_prefix}-\"', 'Average', 300)"
                ),
                using_metrics={},
                label=name,
                period=Duration.minutes(5),
            )
            for name in LOSS_METRICS
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.prefix}-platform",
            default_interval=Duration.days(7),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title=f"Runs by status ({ResourceNames.of(config).state_machine})",
                        left=[runs(status) for status in RUN_STATUSES],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Failed, aborted and timed-out runs",
                        left=[runs(status) for status in ("Failed", "Aborted", "TimedOut")],
                        stacked=True,
                        width=12,
                    ),
                ],
                [
                    cloudwatch.LogQueryWidget(
                        title="Instances held against each quota (as the latest run's capacity check counted)",
                        log_group_names=[log_group.log_group_name],
                        query_lines=QUOTA_QUERY,
                        view=cloudwatch.LogQueryVisualizationType.TABLE,
                        width=12,
                    ),
                    cloudwatch.LogQueryWidget(
                        title="Warm pools retained: since when, for at most keep_alive_seconds",
                        log_group_names=[log_group.log_group_name],
                        query_lines=WARM_POOL_QUERY,
                        view=cloudwatch.LogQueryVisualizationType.TABLE,
                        width=12,
                    ),
                ],
                [cloudwatch.GraphWidget(title="Loss of recent jobs", left=loss, width=24)],
            ],
        )
