"""`trainstack run`: start the environment's state machine with an input built from flags or a JSON file.

The input is checked with the deployed state machine's own Validate expression before anything starts
(`trainstack.run_preview`), so a bad flag is reported at once, worded exactly as the InvalidInput failure
the console would show. `--dry-run` goes on to evaluate Prepare, the quota check, the warm-pool decision
and BuildRequest against live quota values and retained pools, and prints the CreateTrainingJob request.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainstack.cli import executions, output
from trainstack.cli.errors import CliError, print_error
from trainstack.cli.quota_values import QuotaReader
from trainstack.cli.session import Session
from trainstack.cli.usage import current_usage
from trainstack.memory_preview import memory_plan_for_request
from trainstack.run_preview import evaluate, held_instances, preview
from trainstack.source_package import PackagingError, SourcePackage, pack, upload

if TYPE_CHECKING:
    from trainstack.progress import RunProgress

# --- the input ------------------------------------------------------------------------------------------------


# Step Functions' JSONata reads numbers as IEEE doubles: an integer beyond 2**53 would arrive rounded and reach the
# job in scientific notation, so it is kept exact as its digits (a string; hyperparameters are strings anyway).
MAX_EXACT_INTEGER = 2**53


class NonFiniteNumber(ValueError):
    """NaN or an infinity: not JSON (Python's json reads them anyway), and no training value."""


def _exact_integer(text: str) -> int | str:
    value = int(text)
    return value if abs(value) <= MAX_EXACT_INTEGER else text


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(f"{text} is beyond the largest number JSON can carry")
    return value


def _no_constant(text: str) -> None:
    raise NonFiniteNumber(f"{text} is not a JSON number")


def decode_json(text: str) -> Any:
    """JSON as the state machine will read it: NaN/Infinity refused, big integers exact."""
    return json.loads(text, parse_int=_exact_integer, parse_float=_finite_float, parse_constant=_no_constant)


def parse_pairs(values: list[str] | None, flag: str, *, json_values: bool = False) -> dict[str, Any]:
    """`NAME=VALUE` flags as a dict; with `json_values`, a VALUE that parses as JSON is taken as such."""
    pairs: dict[str, Any] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=flag)
        parsed: Any = value
        if json_values:
            try:
                parsed = decode_json(value)
            except NonFiniteNumber as error:
                raise typer.BadParameter(
                    f"{name.strip()}: {error}; expected a finite number", param_hint=flag
                ) from None
            except ValueError:
                parsed = value  # `-p model=gpt2`: a plain string
            # `nan`, `inf`: strings to JSON, but the script's float() would read them as numbers that are none.
            if isinstance(parsed, str) and not math.isfinite(_as_float(parsed)):
                raise typer.BadParameter(f"{name.strip()}: {value!r} is not a finite number", param_hint=flag)
        pairs[name.strip()] = parsed
    return pairs


def _as_float(text: str) -> float:
    """What Python's float() makes of a string; 0.0 when it is no number at all."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def read_input_file(path: Path) -> Any:
    try:
        return decode_json(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CliError(f"{path}: cannot read the input file ({error.strerror}).") from None
    except ValueError as error:
        raise CliError(f"{path}: not valid JSON: {error}.") from None


def build_input(base: Any, overrides: dict[str, Any], maps: dict[str, dict[str, Any]]) -> Any:
    """The file's input with flags on top: scalar flags replace, NAME=VALUE flags merge into the file's maps."""
    if not overrides and not any(maps.values()):
        return base
    if not isinstance(base, dict):
        raise CliError("the --input file must hold a JSON object for flags to be merged into it.")
    merged = dict(base)
    merged.update({key: value for key, value in overrides.items() if value is not None})
    for key, values in maps.items():
        if values:
            existing = merged.get(key)
            merged[key] = {**(existing if isinstance(existing, dict) else {}), **values}
    return merged


def execution_name() -> str:
    # Readable and sortable; the job name takes the last 8 letters/digits, which the random tail keeps unique.
    return f"cli-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


# --- bring your own code ------------------------------------------------------------------------------------


def code_input(
    session: Session,
    run_input: Any,
    source_dir: Path | None,
    entry_point: str | None,
    python_version: str | None = None,
) -> tuple[Any, SourcePackage | None]:
    """Pack --source-dir (wheels for the run's image's Python) and name it in the input's `code`."""
    if source_dir is None and entry_point is None:
        return run_input, None
    if not isinstance(run_input, dict):
        raise CliError("the --input file must hold a JSON object for --source-dir/--entry-point to be added.")
    if entry_point is None:
        raise CliError("--source-dir needs --entry-point: the script in that folder the job runs (train.py).")
    if source_dir is None:
        # Another script of the platform's own package.
        return {**run_input, "code": {"entry_point": entry_point}}, None
    config = session.config
    image = run_input.get("image") or config.image_uri or config.image.dlc_uri(config.region)
    try:
        package = pack(source_dir, entry_point, image_uri=str(image), python_version=python_version)
    except PackagingError as error:
        raise CliError(str(error)) from None
    code = {"package": package.uri(session.names.artifacts_bucket), "entry_point": entry_point}
    return {**run_input, "code": code}, package


def upload_package(session: Session, out: Console, package: SourcePackage, *, dry_run: bool) -> None:
    bucket = session.names.artifacts_bucket
    uri = package.uri(bucket)
    wheels = f", {len(package.wheels)} wheel(s): {', '.join(package.wheels)}" if package.wheels else ""
    size = f"{package.tarball.stat().st_size:,} bytes{wheels}"
    if dry_run:
        output.field(out, "Code", f"{uri} ({size}; not uploaded: dry run)")
    elif upload(session.client("s3"), package, bucket):
        output.field(out, "Code", f"{uri} (uploaded, {size})")
    else:
        output.field(out, "Code", f"{uri} (unchanged, already uploaded)")


# --- checks against the deployed definition -----------------------------------------------------------------


def _context(name: str, start_time: str) -> dict[str, Any]:
    return {"Execution": {"Id": f"arn:aws:states:::execution:preview:{name}", "Name": name, "StartTime": start_time}}


def input_problems(definition: dict[str, Any], run_input: Any) -> list[str]:
    states = {"input": run_input, "context": _context("check", "2026-01-01T00:00:00.000Z")}
    problems = evaluate(definition["States"]["Validate"]["Assign"]["problems"], states)
    if not problems:
        return []
    return list(problems) if isinstance(problems, list) else [problems]


def quota_problem(definition: dict[str, Any], run: dict[str, Any], quotas: dict[str, Any]) -> str | None:
    """The QuotaExceeded cause the CheckQuotas state would give, or None."""
    here = {"input": {}, "context": _context("check", "2026-01-01T00:00:00.000Z")}
    variables = {"run": run, "quotas": quotas, "jobQuota": quotas.get("spot" if run.get("spot") else "training")}
    for choice in definition["States"]["CheckQuotas"]["Choices"]:
        if evaluate(choice["Condition"], here, variables):
            return str(evaluate(choice["Assign"]["quotaProblem"], here, variables))
    return None


def fail(error: str, cause: str) -> typer.Exit:
    print_error(f"{error}: {cause}")
    return typer.Exit(1)


def dry_run(session: Session, out: Console, definition: dict[str, Any], run_input: Any, name: str) -> None:
    start_time = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    here = {"input": run_input, "context": _context(name, start_time)}
    run = evaluate(definition["States"]["Prepare"]["Assign"]["run"], here)
    quotas = QuotaReader(session.client("service-quotas")).run_quotas(run["instance_type"])
    _, pools = current_usage(session.client("sagemaker"))
    result = preview(
        definition,
        run_input,
        quotas=quotas,
        pools=[held_instances(definition, job) for job in pools],
        execution_name=name,
        start_time=start_time,
    )
    out.print(Text("Execution input", style="bold"))
    out.print_json(json.dumps(run_input))
    warm = result.warm_pool or {}
    output.field(out, "Job name", result.job_name or "-")
    output.field(out, "Warm pool", f"keep-alive {warm.get('granted', 0)}s: {warm.get('reason', '')}")
    out.print(Text("CreateTrainingJob request", style="bold"))
    out.print_json(json.dumps(result.request))
    if result.request:
        out.print(memory_plan_for_request(result.request, session.client("s3")), highlight=False)
    problem = quota_problem(definition, run, quotas)
    if problem:
        raise fail("QuotaExceeded", f"{problem} (this run would fail before creating the job)")
    out.print("Dry run: nothing was started.", style="dim")


# --- watching ------------------------------------------------------------------------------------------------


def _watch(session: Session, execution_arn: str, out: Console) -> tuple[dict[str, Any], RunProgress]:
    from trainstack.progress import watch

    return watch(session.client, execution_arn, out)


def run(
    ctx: typer.Context,
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="JSON file with the execution input; flags override it.")
    ] = None,
    instance_type: Annotated[str | None, typer.Option("--instance-type", help="e.g. ml.g5.2xlarge")] = None,
    instance_count: Annotated[int | None, typer.Option("--instance-count", help="Instances (nodes).")] = None,
    hyperparameter: Annotated[
        list[str] | None,
        typer.Option(
            "--hyperparameter",
            "-p",
            metavar="NAME=VALUE",
            help="Repeatable; VALUE is JSON when it parses (4, 1e-3); NaN and Infinity are refused.",
        ),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", metavar="NAME=PREFIX", help="Input channel from a data-bucket prefix; repeatable."),
    ] = None,
    replace_channels: Annotated[
        bool | None,
        typer.Option(
            "--replace-channels",
            help="The --channel flags (and the file's channels) are the only channels: no environment defaults.",
        ),
    ] = None,
    environment: Annotated[
        list[str] | None,
        typer.Option("--env", metavar="NAME=VALUE", help="Environment variable for the training script; repeatable."),
    ] = None,
    keep_alive: Annotated[
        int | None, typer.Option("--keep-alive", metavar="SECONDS", help="Warm-pool keep-alive (0 to 3600).")
    ] = None,
    max_runtime: Annotated[int | None, typer.Option("--max-runtime", metavar="SECONDS", help="Max run time.")] = None,
    spot: Annotated[bool | None, typer.Option("--spot/--no-spot", help="Managed spot training.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="Job tag; repeatable.")] = None,
    source_dir: Annotated[
        Path | None,
        typer.Option(
            "--source-dir",
            help="Your code folder (the SDK's source_dir): packed with its requirements.txt resolved into wheels, "
            "uploaded under the artifacts bucket's code/ prefix once per content.",
            file_okay=False,
        ),
    ] = None,
    entry_point: Annotated[
        str | None,
        typer.Option("--entry-point", help="The script to run, relative to --source-dir (.py or .sh)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Training image from the environment's allow-list.")
    ] = None,
    python_version: Annotated[
        str | None,
        typer.Option(
            "--python-version",
            help="The image's Python (3.11) for the wheels, when its tag has no -py3NN- part.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Execution name (default: cli-<time>-<random>).")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the run live until it ends.")] = False,
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Show the input and the CreateTrainingJob request; start nothing.")
    ] = False,
) -> None:
    """Start a training run: the environment's defaults, overridden by --input and the flags.

    Examples:

      trainstack run --watch

      trainstack run -p max_steps=20 -p learning_rate=1e-3 --keep-alive 600 --watch

      trainstack run --input examples/inputs/demo.json --dry-run

      trainstack run --source-dir examples/byo-code --entry-point train.py --watch
    """
    session: Session = ctx.obj
    out = output.console()
    run_input = build_input(
        read_input_file(input_file) if input_file else {},
        {
            "instance_type": instance_type,
            "instance_count": instance_count,
            "keep_alive_seconds": keep_alive,
            "max_runtime_seconds": max_runtime,
            "spot": spot,
            "image": image,
            "replace_channels": replace_channels,
        },
        {
            "hyperparameters": parse_pairs(hyperparameter, "--hyperparameter", json_values=True),
            "channels": parse_pairs(channel, "--channel"),
            "environment": parse_pairs(environment, "--env"),
            "tags": parse_pairs(tag, "--tag"),
        },
    )
    definition = session.definition()
    run_input, package = code_input(session, run_input, source_dir, entry_point, python_version)
    problems = input_problems(definition, run_input)
    if problems:
        raise fail("InvalidInput", "; ".join(problems))
    name = name or execution_name()
    if package is not None:
        upload_package(session, out, package, dry_run=dry_run_)
    if dry_run_:
        dry_run(session, out, definition, run_input, name)
        return

    started = session.client("stepfunctions").start_execution(
        stateMachineArn=session.state_machine_arn, name=name, input=json.dumps(run_input, allow_nan=False)
    )
    arn = started["executionArn"]
    output.field(out, "Started", f"{name} on {session.names.state_machine} ({session.where})")
    if not session.endpoint_url:
        output.field(
            out,
            "Console",
            f"https://{session.region}.console.aws.amazon.com/states/home?region={session.region}"
            f"#/v2/executions/details/{arn}",
        )
    if not watch:
        out.print(f"Follow it with: {session.cli} status {name}, or {session.cli} logs {name} --follow")
        return
    try:
        described, progress = _watch(session, arn, out)
    except KeyboardInterrupt:
        out.print(
            f"Stopped watching; the run goes on: {session.cli} status {name}; to end it: {session.cli} stop {name}"
        )
        raise typer.Exit(130) from None
    executions.print_view(out, executions.view_of(session, described))
    losses = progress.loss_summary()
    output.field(out, "Loss", losses or "none logged")
    if described["status"] != "SUCCEEDED":
        raise fail(described.get("error") or described["status"], described.get("cause") or "no cause given")
