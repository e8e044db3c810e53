"""`make demo`: the whole platform on the embedded AWS, the way a user meets it.

1. start the embedded AWS (moto + trainstack's adapters) on 127.0.0.1
2. `cdk synth`, `cdk bootstrap`, `cdk deploy` of the `local` environment with the real CDK CLI
3. upload the tiny model and the sample dataset to the data bucket (what the notebook does)
4. start an execution with `examples/inputs/demo.json`, as from the Step Functions console, and follow it:
   states, the job's secondary status, a bar of its epochs, the evaluation loss
5. print the result and the first → last train and eval loss
6. download the model artifact and load it to prove it is a working model
Then everything shuts down, also on failure (one sentence and exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainstack.config import app_dir, load_environment
from trainstack.local_platform import DeployError, deploy, stage_demo_data
from trainstack.tiny_model import DEFAULT_CORPUS

# The demo is the repository's own: it runs from the checkout's root (`make demo`), with its example input.
DEMO_INPUT = app_dir() / "examples" / "inputs" / "demo.json"


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


def _result_table(output: dict[str, Any], seconds: dict[str, float]) -> Table:
    table = Table(title="training run", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    warm = output.get("warmPool", {})
    rows = [
        ("job", output["jobName"]),
        ("status", f"{output['status']} ({output.get('secondaryStatus')})"),
        ("instances", f"{output['instanceCount']} × {output['instanceType']}"),
        ("model artifact", output.get("modelArtifacts") or "-"),
        ("warm pool", f"kept {warm.get('granted', 0)} s, now {warm.get('status')}: {warm.get('reason')}"),
        ("training / billable", f"{output.get('trainingSeconds')} s / {output.get('billableSeconds')} s"),
        ("execution", f"{seconds['execution']:.1f} s from StartExecution to the result"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def _check_model(s3: Any, artifact_uri: str, work: Path, prompt: str) -> str:
    """Download model.tar.gz, load it with transformers and generate a few tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    bucket, key = artifact_uri.removeprefix("s3://").split("/", 1)
    archive = work / "model.tar.gz"
    s3.download_file(bucket, key, str(archive))
    model_dir = work / "trained-model"
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(
            **inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id
        )
    parameters = sum(p.numel() for p in model.parameters())
    text = tokenizer.decode(generated[0], skip_special_tokens=True)
    return f"{type(model).__name__} with {parameters:,} parameters; greedy continuation: {text!r}"


def run_demo(console: Console, work: Path) -> dict[str, float]:
    from trainstack.embedded_aws import EmbeddedAws
    from trainstack.progress import watch
    from trainstack.tiny_model import build_tiny_model

    config = load_environment("local")
    seconds: dict[str, float] = {}
    started = time.monotonic()
    console.rule("[bold]trainstack demo[/bold]: the local environment on the embedded AWS")
    with EmbeddedAws(config, work_dir=work / "jobs") as aws:
        console.print(f"[1/6] embedded AWS listening at {aws.endpoint_url} (moto + trainstack adapters)")

        console.print("[2/6] deploying with the real CDK CLI:")
        platform = deploy(
            config,
            aws.env,
            work / "cdk.out",
            log=work / "cdk.log",
            on_phase=lambda phase: console.print(f"      cdk {phase} …"),
        )
        seconds.update(platform.seconds)
        console.print(
            "      "
            + ", ".join(f"{phase} {value:.1f} s" for phase, value in platform.seconds.items())
            + f"; state machine {platform.state_machine_arn}"
        )

        console.print("[3/6] uploading the tiny model and the sample dataset (the notebook's step):")
        for channel, uri in stage_demo_data(aws.client("s3"), config, build_tiny_model(work / "tiny-model")).items():
            console.print(f"      {channel:6} {uri}")

        run_input = json.loads(DEMO_INPUT.read_text(encoding="utf-8"))
        console.print(f"[4/6] StartExecution with {DEMO_INPUT.relative_to(app_dir())}: {json.dumps(run_input)}")
        execution = aws.client("stepfunctions").start_execution(
            stateMachineArn=platform.state_machine_arn, name=f"demo-{uuid.uuid4().hex[:8]}", input=json.dumps(run_input)
        )
        run_started = time.monotonic()
        described, progress = watch(aws.client, execution["executionArn"], console, timeout_seconds=900)
        seconds["execution"] = time.monotonic() - run_started
        if described["status"] != "SUCCEEDED":
            raise DemoError(
                f"the execution ended {described['status']}: {described.get('error')}: {described.get('cause')}"
            )
        output = json.loads(described["output"])
        seconds["training"] = float(output.get("trainingSeconds") or 0)
        console.print("[5/6] result:")
        console.print(_result_table(output, seconds))
        console.print(f"      loss: {progress.loss_summary() or 'none logged'}")

        console.print("[6/6] loading the trained model from its artifact:")
        prompt = DEFAULT_CORPUS.read_text(encoding="utf-8").split()[:4]
        console.print(f"      {_check_model(aws.client('s3'), output['modelArtifacts'], work, ' '.join(prompt))}")
    seconds["total"] = time.monotonic() - started
    console.print(f"embedded AWS stopped. Whole demo: {seconds['total']:.1f} s.")
    return seconds


def failure_sentence(error: BaseException) -> str:
    """One sentence for whatever ended the demo: the CLI's wording for AWS errors, our own for the rest."""
    from trainstack.cli.errors import explain

    if isinstance(error, DemoError | DeployError):
        return str(error)
    return explain(error) or (
        f"unexpected {type(error).__name__}: {error} (rerun with TRAINSTACK_DEBUG=1 for the traceback and report it)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timings", type=Path, help="write the phases' seconds to this JSON file (make bench)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, cdk.out, job folders)")
    args = parser.parse_args(argv)
    # moto warns about every CloudFormation type it only records (bucket policies, alarms, ...);
    # the embedded AWS README lists them, the demo's reader does not need them.
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    console = Console(width=None if sys.stdout.isatty() else 120)
    work = Path(tempfile.mkdtemp(prefix="trainstack-demo-"))
    try:
        seconds = run_demo(console, work)
    except KeyboardInterrupt:
        console.print(f"demo interrupted; logs and job folders kept in {work}")
        return 130
    except Exception as error:  # every failure ends in one sentence, never a traceback
        if os.environ.get("TRAINSTACK_DEBUG"):
            raise
        console.print(Text("demo failed: ", style="bold red") + Text(failure_sentence(error)))
        console.print(f"logs and job folders kept in {work}")
        return 1
    if args.timings:
        args.timings.write_text(json.dumps(seconds, indent=2), encoding="utf-8")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
