"""`make smoke ENV=<name>`: prove a deployed environment on its account in a few cents, and say what it cost.

    python -m trainstack.smoke --env dev [--instance-type ml.g5.xlarge] [--multi-node-count 2]

Every run uses the environment's `training.instance_type` unless `--instance-type` names another allowed type
(its quota and the price table decide what the smoke can run and what it estimates).

Against the environment's account (boto3's credential chain, the environment's region) or, for an embedded
environment, the embedded AWS (`--endpoint-url`, else AWS_ENDPOINT_URL, else `make local-up`'s server):
1. `ValidateStateMachineDefinition` on the deployed definition (errors fail, warnings are listed);
2. stages the tiny model and the sample dataset under `smoke/` in the data bucket;
   then `TestState` of the deployed `Train` state with run A's CreateTrainingJob request, built as the pipeline
   builds it (`run_preview`, the account's quotas): the state must succeed and evaluate to exactly that request
   (`inspectionData.afterArguments`). Train is `createTrainingJob.sync`, which TestState runs only with a mock
   (TestState API reference), so the job's result is mocked and nothing is created;
3. run A: 1 instance with a keep-alive, through the deployed state machine (as the console would start it); its
   checkpoints must be in the artifacts bucket (SageMaker's upload passes the bucket policy's key rules);
4. run B: the same request: its job must reuse A's warm pool (`WarmPoolStatus.ReusedByJob`) — skipped, with
   the state machine's reason, when the account's warm-pool quota grants no pool;
5. releases B's pool (`UpdateTrainingJob` with `KeepAlivePeriodInSeconds` 0) and checks it is Terminated;
6. run C: `--multi-node-count` instances, no keep-alive;
7. run D fails on purpose (an empty train channel): the pool cleanup must follow its FAILED execution (skipped,
   naming what the deployed cleanup follows, where it does not listen for FAILED);
8. prints each check (passed / failed / skipped) and an estimated cost: (billable seconds + retained warm-pool
   seconds) × instances × the on-demand price in `trainstack/data/sagemaker_training_prices.json`.
Exit code 0 only when no check failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from trainstack.cli import output
from trainstack.cli.errors import CliError
from trainstack.cli.quota_values import QuotaReader
from trainstack.cli.session import Session
from trainstack.local_platform import SAMPLE_DATA_DIR, upload_directory
from trainstack.run_preview import preview

SMOKE_PREFIX = "smoke/"
# A few optimizer steps: the point is the platform path, not the model.
QUICK_HYPERPARAMETERS = {"max_steps": 4, "logging_steps": 2, "eval_steps": 4, "save_steps": 4}
# Between looks at a run or a pool: a real account's runs take minutes.
POLL_SECONDS = 5.0
# Members of the request whose acceptance by the `.sync` integration AWS's documentation does not confirm (#16).
UNCONFIRMED_MEMBERS = ("KeepAlivePeriodInSeconds", "RetryStrategy", "EnableSageMakerMetricsTimeSeries")


@dataclass
class Check:
    name: str
    outcome: str  # passed | failed | skipped
    detail: str


@dataclass
class JobCost:
    job: str
    instance_type: str
    instances: int
    billable_seconds: int
    retained_seconds: int
    usd_per_hour: float | None

    @property
    def usd(self) -> float | None:
        if self.usd_per_hour is None:
            return None
        return (self.billable_seconds + self.retained_seconds) * self.instances * self.usd_per_hour / 3600


@dataclass
class SmokeReport:
    environment: str
    checks: list[Check] = field(default_factory=list)
    costs: list[JobCost] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.outcome != "failed" for check in self.checks)

    def add(self, name: str, ok: bool | None, detail: str) -> bool:
        self.checks.append(Check(name, "skipped" if ok is None else "passed" if ok else "failed", detail))
        return bool(ok)


def load_prices() -> dict[str, Any]:
    return json.loads(resources.files("trainstack.data").joinpath("sagemaker_training_prices.json").read_text())


class Smoke:
    def __init__(
        self,
        session: Session,
        instance_type: str,
        multi_node_count: int,
        keep_alive: int,
        timeout: float,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.session = session
        self.instance_type = instance_type
        self.multi_node_count = multi_node_count
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.report = SmokeReport(session.config.name)
        self.prices = load_prices()
        self.sfn = session.client("stepfunctions")
        self.sagemaker = session.client("sagemaker")
        self.run_id = f"smoke-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        self.jobs: list[str] = []  # every job a smoke run created, for the cost report

    # ---------------------------------------------------------------------------------------------- steps

    def run(self, model_dir: Path | None = None) -> SmokeReport:
        self._check_instance_family()
        self.validate_definition()
        channels = self.stage_data(model_dir)
        base = {
            "instance_type": self.instance_type,
            "instance_count": 1,
            "hyperparameters": QUICK_HYPERPARAMETERS,
            "channels": channels,
            "max_runtime_seconds": 3600,
            "keep_alive_seconds": self.keep_alive,
            "tags": {"trainstack-smoke": self.run_id},
        }
        self.check_train_request(base)
        first = self.train("run A: 1 instance, keep-alive", base, "a")
        if first:
            self.check_checkpoints(first)
        second = self.train("run B: same request, reuses the pool", base, "b") if first else None
        if first and second:
            self.check_reuse(first, second)
            self.release(second)
        multi = {**base, "instance_count": self.multi_node_count, "keep_alive_seconds": 0}
        self.train(f"run C: {self.multi_node_count} instances", multi, "c")
        self.check_failed_run_cleanup(base)
        return self.report

    def _check_instance_family(self) -> None:
        family = self.instance_type.split(".")[1] if self.instance_type.count(".") == 2 else self.instance_type
        allowed = self.session.config.training.allowed_instance_families
        if family not in allowed:
            raise CliError(
                f"--instance-type {self.instance_type} is of family '{family}', which environment "
                f"'{self.session.config.name}' does not allow ({', '.join(allowed)}): add '{family}' to "
                "training.allowed_instance_families and deploy, or pass an allowed --instance-type."
            )

    def validate_definition(self) -> None:
        definition = self.session.describe_state_machine()["definition"]
        answer = self.sfn.validate_state_machine_definition(definition=definition, type="STANDARD")
        diagnostics = answer.get("diagnostics", [])
        errors = [d for d in diagnostics if d["severity"] == "ERROR"]
        warnings = [d for d in diagnostics if d["severity"] != "ERROR"]
        detail = "; ".join(f"{d['severity']} {d['code']} {d.get('location', '')}: {d['message']}" for d in diagnostics)
        ok = answer["result"] == "OK" and not errors
        summary = f"{self.session.names.state_machine}: {answer['result']}"
        if warnings and ok:
            summary += f", {len(warnings)} warning(s)"
        self.report.add("definition validates", ok, f"{summary}{': ' + detail if detail else ''}")

    def check_train_request(self, run_input: dict[str, Any]) -> None:
        """TestState of the deployed Train state with the request the pipeline would build for `run_input`.

        The request comes from the deployed definition's own expressions (`run_preview`, with the account's
        quotas, as `trainstack run --dry-run` builds it). Train is `createTrainingJob.sync`: TestState runs `.sync`
        only with a mock, so the job's answer is mocked (its fields typed as both CreateTrainingJob's and
        DescribeTrainingJob's answers type them, checked with fieldValidationMode PRESENT) and no job is created.
        Without a call the role is not needed, and none is passed: AWS does not document the aws:SourceArn
        TestState would assume it with, and the role's trust policy names the state machine."""
        label = "Train state takes the pipeline's request (TestState)"
        described = self.session.describe_state_machine()
        definition = json.loads(described["definition"])
        quotas = QuotaReader(self.session.client("service-quotas")).run_quotas(run_input["instance_type"])
        built = preview(definition, run_input, quotas=quotas, execution_name=f"{self.run_id}-t")
        if built.request is None:
            self.report.add(label, False, f"the run input is refused: {'; '.join(built.problems)}")
            return
        request = built.request
        job = {
            "TrainingJobName": request["TrainingJobName"],
            "TrainingJobArn": self.session.names.arn("sagemaker", f"training-job/{request['TrainingJobName'].lower()}"),
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{request['OutputDataConfig']['S3OutputPath']}model.tar.gz"},
        }
        answer = self.sfn.test_state(
            definition=described["definition"],
            stateName="Train",
            variables=json.dumps({"request": request}),
            mock={"result": json.dumps(job), "fieldValidationMode": "PRESENT"},
            inspectionLevel="DEBUG",
        )
        sent = json.loads(answer.get("inspectionData", {}).get("afterArguments") or "null")
        expected_next = definition["States"]["Train"].get("Next")
        ok = answer["status"] == "SUCCEEDED" and sent == request and answer.get("nextState") == expected_next
        unconfirmed = [member for member in UNCONFIRMED_MEMBERS if member in json.dumps(request)]
        if ok:
            detail = (
                f"{answer['status']} → {answer.get('nextState')}; {len(request)} members"
                f"{', with ' + ', '.join(unconfirmed) if unconfirmed else ''}"
            )
        elif answer["status"] != "SUCCEEDED":
            detail = f"{answer['status']}: {answer.get('error')}: {answer.get('cause')}"
        else:
            detail = f"the state evaluated to another request than the pipeline's: {json.dumps(sent)[:400]}"
        self.report.add(label, ok, detail)

    def stage_data(self, model_dir: Path | None) -> dict[str, str]:
        """The sample dataset and the tiny model under smoke/ in the data bucket; every default channel fed."""
        s3 = self.session.client("s3")
        bucket = self.session.names.data_bucket
        if model_dir is None:
            from trainstack.tiny_model import build_tiny_model

            model_dir = build_tiny_model(Path(tempfile.mkdtemp(prefix="trainstack-smoke-model-")))
        sources = {"train": SAMPLE_DATA_DIR / "train", "val": SAMPLE_DATA_DIR / "val", "model": model_dir}
        for name, source in sources.items():
            upload_directory(s3, source, bucket, f"{SMOKE_PREFIX}{name}/")
        # Channels the environment adds by default must point at data too, or the job has nothing to download.
        names = set(self.session.config.training.channels) | set(sources)
        return {name: f"{SMOKE_PREFIX}{name if name in sources else 'train'}/" for name in sorted(names)}

    def train(self, label: str, run_input: dict[str, Any], suffix: str) -> dict[str, Any] | None:
        name = f"{self.run_id}-{suffix}"
        started = self.sfn.start_execution(
            stateMachineArn=self.session.state_machine_arn, name=name, input=json.dumps(run_input)
        )
        described = self._wait(started["executionArn"])
        if described["status"] != "SUCCEEDED":
            self.jobs.extend(self._jobs_of(described["executionArn"]))
            self.report.add(label, False, f"{described['status']}: {described.get('error')}: {described.get('cause')}")
            return None
        result = json.loads(described["output"])
        self.jobs.append(result["jobName"])
        artifact = result.get("modelArtifacts") or ""
        ok = result.get("status") == "Completed" and self._exists(artifact)
        self.report.add(label, ok, f"job {result['jobName']}, model {artifact or 'missing'}")
        return result

    def check_failed_run_cleanup(self, base: dict[str, Any]) -> None:
        """Run D fails (its train channel is an empty prefix, so the training code finds no data); the pool cleanup
        must follow the FAILED execution. A deployment whose cleanup rule does not listen for FAILED yet is
        reported as skipped, naming what it listens for."""
        label = "pool cleanup follows a FAILED run"
        cleanup_arn = f"{self.session.state_machine_arn}-pool-cleanup"
        events = self.session.client("events")
        statuses: set[str] = set()
        for rule in events.list_rule_names_by_target(TargetArn=cleanup_arn).get("RuleNames", []):
            pattern = json.loads(events.describe_rule(Name=rule).get("EventPattern") or "{}")
            statuses |= set(pattern.get("detail", {}).get("status", []))
        if "FAILED" not in statuses:
            self.report.add(
                label, None, f"the deployed cleanup follows {', '.join(sorted(statuses)) or 'nothing'} only"
            )
            return
        failing = {**base, "channels": {**base["channels"], "train": f"{SMOKE_PREFIX}missing/"}}
        name = f"{self.run_id}-d"
        started = self.sfn.start_execution(
            stateMachineArn=self.session.state_machine_arn, name=name, input=json.dumps(failing)
        )
        described = self._wait(started["executionArn"])
        self.jobs.extend(self._jobs_of(described["executionArn"]))
        if described["status"] != "FAILED":
            self.report.add(label, False, f"run D ended {described['status']}, not FAILED")
            return
        cleanup = self._cleanup_of(cleanup_arn, started["executionArn"])
        ok = cleanup is not None and cleanup["status"] == "SUCCEEDED"
        detail = f"{cleanup['executionArn'].rsplit(':', 1)[-1]}: {cleanup['status']}" if cleanup else "none started"
        self.report.add(label, ok, f"run D FAILED; cleanup {detail}")

    def _cleanup_of(self, cleanup_arn: str, execution_arn: str) -> dict[str, Any] | None:
        """The cleanup execution EventBridge started for `execution_arn` (its input is the status event), ended."""
        deadline = time.monotonic() + min(self.timeout, 600)
        while time.monotonic() < deadline:
            for listed in self.sfn.list_executions(stateMachineArn=cleanup_arn, maxResults=100)["executions"]:
                described = self.sfn.describe_execution(executionArn=listed["executionArn"])
                if execution_arn in (described.get("input") or "") and described["status"] != "RUNNING":
                    return described
            time.sleep(self.poll_seconds)
        return None

    def check_checkpoints(self, result: dict[str, Any]) -> None:
        """SageMaker uploads /opt/ml/checkpoints as the job's role, under the artifacts bucket's key rules: on a
        local-storage type (ml.g5.xlarge) too, whose volume carries no VolumeKmsKeyId."""
        label = "checkpoint uploaded to the artifacts bucket"
        job = self.sagemaker.describe_training_job(TrainingJobName=result["jobName"])
        uri = (job.get("CheckpointConfig") or {}).get("S3Uri")
        if not uri:
            self.report.add(label, None, "the environment keeps no checkpoints (training.checkpoints: false)")
            return
        bucket, _, prefix = uri[5:].partition("/")
        listed = self.session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        count = listed.get("KeyCount", 0)
        self.report.add(label, count > 0, f"{count} object(s) under {uri} ({job['ResourceConfig']['InstanceType']})")

    def check_reuse(self, first: dict[str, Any], second: dict[str, Any]) -> None:
        label = "warm pool reused by the next matching run"
        if not first["warmPool"].get("granted"):
            self.report.add(label, None, f"no pool was kept: {first['warmPool'].get('reason')}")
            return
        pool = self.sagemaker.describe_training_job(TrainingJobName=first["jobName"]).get("WarmPoolStatus", {})
        ok = pool.get("Status") == "Reused" and pool.get("ReusedByJob") == second["jobName"]
        self.report.add(label, ok, f"{first['jobName']}: {pool.get('Status')}, reused by {pool.get('ReusedByJob')}")

    def release(self, second: dict[str, Any]) -> None:
        label = "warm pool released (UpdateTrainingJob keep-alive 0)"
        job = second["jobName"]
        pool = self.sagemaker.describe_training_job(TrainingJobName=job).get("WarmPoolStatus", {})
        if pool.get("Status") != "Available":
            self.report.add(label, None, f"{job} holds no Available pool ({pool.get('Status', 'none')})")
            return
        self.sagemaker.update_training_job(TrainingJobName=job, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
        deadline = time.monotonic() + 300
        while (status := self._pool_status(job)) == "Available" and time.monotonic() < deadline:
            time.sleep(self.poll_seconds)
        self.report.add(label, status == "Terminated", f"{job}: {status}")

    # ---------------------------------------------------------------------------------------------- cost

    def collect_costs(self) -> None:
        prices = self.prices["on_demand_usd_per_hour"]
        for name in self.jobs:
            job = self.sagemaker.describe_training_job(TrainingJobName=name)
            config = job["ResourceConfig"]
            pool = job.get("WarmPoolStatus", {})
            self.report.costs.append(
                JobCost(
                    job=name,
                    instance_type=config["InstanceType"],
                    instances=config["InstanceCount"],
                    billable_seconds=int(job.get("BillableTimeInSeconds") or 0),
                    retained_seconds=int(pool.get("ResourceRetainedBillableTimeInSeconds") or 0),
                    usd_per_hour=prices.get(config["InstanceType"]),
                )
            )

    # ---------------------------------------------------------------------------------------------- helpers

    def _wait(self, execution_arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=execution_arn, cause="trainstack smoke timed out")
                return {**described, "status": "TIMED_OUT", "error": "SmokeTimeout", "cause": f"{self.timeout}s"}
            time.sleep(self.poll_seconds)

    def _jobs_of(self, execution_arn: str) -> list[str]:
        """The training job a failed execution created, if it got that far (its Train task's request)."""
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        names = []
        for event in events:
            details = event.get("taskScheduledEventDetails") or {}
            if details.get("resourceType") == "sagemaker" and "createTrainingJob" in details.get("resource", ""):
                name = json.loads(details.get("parameters") or "{}").get("TrainingJobName")
                if name and self._job_exists(name):
                    names.append(name)
        return names

    def _job_exists(self, name: str) -> bool:
        try:
            self.sagemaker.describe_training_job(TrainingJobName=name)
        except ClientError:
            return False
        return True

    def _exists(self, uri: str) -> bool:
        if not uri.startswith("s3://"):
            return False
        bucket, _, key = uri[5:].partition("/")
        try:
            self.session.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True

    def _pool_status(self, job: str) -> str | None:
        return self.sagemaker.describe_training_job(TrainingJobName=job).get("WarmPoolStatus", {}).get("Status")


def print_report(report: SmokeReport, prices: dict[str, Any]) -> None:
    out = output.console()
    checks = Table(title=f"trainstack smoke: {report.environment}", title_justify="left")
    for column in ("check", "result", "detail"):
        checks.add_column(column)
    for check in report.checks:
        style = {"passed": "green", "failed": "red", "skipped": "yellow"}[check.outcome]
        checks.add_row(check.name, f"[{style}]{check.outcome}[/{style}]", check.detail)
    out.print(checks)
    costs = Table(title="Cost (estimate)", title_justify="left")
    for column in ("job", "instances", "billable s", "warm pool s", "USD/h", "USD"):
        costs.add_column(column, justify="left" if column == "job" else "right")
    total = 0.0
    for cost in report.costs:
        usd = cost.usd
        total += usd or 0.0
        costs.add_row(
            cost.job,
            f"{cost.instances} × {cost.instance_type}",
            str(cost.billable_seconds),
            str(cost.retained_seconds),
            "?" if cost.usd_per_hour is None else f"{cost.usd_per_hour:.3f}",
            "?" if usd is None else f"{usd:.4f}",
        )
    out.print(costs)
    out.print(
        f"Estimated total: ${total:.4f} — (billable + warm-pool seconds) × instances × the {prices['region']} "
        f"on-demand price ({prices['source']}); an estimate, not your bill: other regions, S3, logs and "
        "the notebook instance are not counted."
    )
    out.print("smoke " + ("[green]passed[/green]" if report.passed else "[red]FAILED[/red]"))


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds above 0 and at most 60, got {value!r}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainstack.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="environment name (config/<env>.yaml), deployed already")
    parser.add_argument("--endpoint-url", help="the embedded AWS (embedded environments only)")
    parser.add_argument(
        "--instance-type", help="instance type of every smoke run (default: the environment's training.instance_type)"
    )
    parser.add_argument("--multi-node-count", type=int, default=2, help="instances of the multi-node run")
    parser.add_argument("--keep-alive", type=int, default=300, help="keep-alive of runs A and B (seconds)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each run may take")
    parser.add_argument(
        "--poll-seconds", type=_positive_seconds, default=POLL_SECONDS, help="seconds between looks at a run"
    )
    parser.add_argument("--model-dir", type=Path, help="a tiny model folder to upload instead of building one")
    args = parser.parse_args(argv)
    try:
        session = Session.open(args.env, args.endpoint_url)
        instance_type = args.instance_type or session.config.training.instance_type
        smoke = Smoke(session, instance_type, args.multi_node_count, args.keep_alive, args.timeout, args.poll_seconds)
        report = smoke.run(model_dir=args.model_dir)
        smoke.collect_costs()
    except CliError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:  # no credentials, access denied, a service refusing: one sentence
        print(f"smoke: AWS refused a call, nothing further was tried: {error}", file=sys.stderr)
        return 1
    print_report(report, smoke.prices)
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
