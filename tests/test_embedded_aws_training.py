"""The local SageMaker training executor, driven through CreateTrainingJob on the embedded endpoint."""

from __future__ import annotations

import io
import json
import tarfile
import time
from typing import Any

import pytest

from trainstack.embedded_aws.testing import (
    job_request,
    log_lines,
    unique,
    upload_script,
    wait_for_execution,
    wait_for_job,
)

pytestmark = pytest.mark.slow

SUCCEEDING = """
import json, os, pathlib
print("script started", flush=True)
data = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"], "part-0.txt").read_text()
hps = json.loads(os.environ["SM_HPS"])
model = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model / "weights.txt").write_text(f"{data}|{hps['epochs']}|{os.environ['NODE_NUMBER']}")
pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json").write_text("{}")
ckpt = pathlib.Path(os.environ["SM_CHECKPOINT_DIR"])
previous = (ckpt / "step.txt").read_text() if (ckpt / "step.txt").exists() else "none"
(ckpt / "step.txt").write_text("1")
print(f"resumed from {previous}", flush=True)
print("script finished", flush=True)
"""

FAILING = """
import os, pathlib, sys
pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"], "output", "failure").write_text("CUDA out of memory (simulated)")
sys.exit(1)
"""

SLEEPING = """
import time
print("sleeping", flush=True)
time.sleep(120)
"""

ALL_REDUCE = """
import json, os
import torch
import torch.distributed as dist
hosts = json.loads(os.environ["SM_HOSTS"])
rank = hosts.index(os.environ["SM_CURRENT_HOST"])
dist.init_process_group("gloo", init_method=f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
                        rank=rank, world_size=len(hosts))
value = torch.tensor([rank + 1.0])
dist.all_reduce(value)
print(f"rank {rank} of {len(hosts)} all_reduce={value.item()}", flush=True)
dist.destroy_process_group()
"""


@pytest.fixture(scope="module")
def bucket(embedded_aws: Any) -> str:
    name = unique("training")
    s3 = embedded_aws.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="datasets/train/part-0.txt", Body=b"hello data")
    return name


def _read_tar(s3: Any, bucket: str, key: str) -> dict[str, bytes]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}


def test_job_runs_the_script_and_uploads_model_logs_and_checkpoints(embedded_aws: Any, bucket: str) -> None:
    s3 = embedded_aws.client("s3")
    sagemaker = embedded_aws.client("sagemaker")
    name = unique("ok")
    code = upload_script(s3, bucket, SUCCEEDING)
    request = job_request(
        name,
        bucket,
        code,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/datasets/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        Environment={"NODE_NUMBER": "1"},
        CheckpointConfig={"S3Uri": f"s3://{bucket}/checkpoints/{name}"},
    )
    request["HyperParameters"]["epochs"] = "3"
    sagemaker.create_training_job(**request)
    assert sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    described = wait_for_job(sagemaker, name)

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    statuses = [item["Status"] for item in described["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all("StartTime" in item and "EndTime" in item for item in described["SecondaryStatusTransitions"])
    assert described["TrainingTimeInSeconds"] >= 1 and described["BillableTimeInSeconds"] >= 1
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    assert _read_tar(s3, bucket, f"output/{name}/output/model.tar.gz") == {"weights.txt": b"hello data|3|1"}
    assert "metrics.json" in _read_tar(s3, bucket, f"output/{name}/output/output.tar.gz")
    assert s3.get_object(Bucket=bucket, Key=f"checkpoints/{name}/step.txt")["Body"].read() == b"1"

    streams = log_lines(embedded_aws.client("logs"), name)
    ((stream, lines),) = streams.items()
    assert stream.startswith(f"{name}/algo-1-")
    assert "script started" in lines and "resumed from none" in lines and "script finished" in lines

    # Same checkpoint S3Uri: the next job starts from the synced checkpoint (resume).
    again = unique("resume")
    sagemaker.create_training_job(**{**request, "TrainingJobName": again})
    assert wait_for_job(sagemaker, again)["TrainingJobStatus"] == "Completed"
    assert "resumed from 1" in next(iter(log_lines(embedded_aws.client("logs"), again).values()))


def test_uncompressed_model_output(embedded_aws: Any, bucket: str) -> None:
    s3 = embedded_aws.client("s3")
    sagemaker = embedded_aws.client("sagemaker")
    name = unique("raw")
    script = (
        "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'sub').mkdir()\n"
        "pathlib.Path(os.environ['SM_MODEL_DIR'], 'sub', 'w.bin').write_bytes(b'w')\n"
    )
    request = job_request(
        name,
        bucket,
        upload_script(s3, bucket, script),
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/raw", "CompressionType": "NONE"},
    )
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name)
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/raw/{name}/output/model/"
    assert s3.get_object(Bucket=bucket, Key=f"raw/{name}/output/model/sub/w.bin")["Body"].read() == b"w"


def test_failing_script_fails_the_job_with_its_reason(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    name = unique("fail")
    sagemaker.create_training_job(
        **job_request(name, bucket, upload_script(embedded_aws.client("s3"), bucket, FAILING))
    )
    described = wait_for_job(sagemaker, name)
    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: CUDA out of memory (simulated)"
    assert "ModelArtifacts" not in described


def test_request_is_validated_against_the_sagemaker_model(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    request = job_request(unique("bad"), bucket, "s3://x/y.tar.gz")
    request["HyperParameters"]["epochs"] = 3  # the SDK sends strings only
    request.pop("RoleArn")
    # Client-side validation off: the server must reject it, as SageMaker does for raw API callers.
    from botocore.config import Config

    raw = embedded_aws.client("sagemaker", config=Config(parameter_validation=False))
    with pytest.raises(raw.exceptions.ClientError) as error:
        raw.create_training_job(**request)
    message = str(error.value)
    assert "ValidationException" in message
    assert "HyperParameters.epochs" in message
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in message
    with pytest.raises(sagemaker.exceptions.ClientError, match="ResourceLimitExceeded"):
        # ml.c5.xlarge has a training quota of 0 in config/local.yaml.
        sagemaker.create_training_job(
            **job_request(
                unique("quota"),
                bucket,
                "s3://x/y.tar.gz",
                ResourceConfig={"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            )
        )


def test_stop_and_max_runtime_stop_the_job(embedded_aws: Any, bucket: str) -> None:
    s3 = embedded_aws.client("s3")
    sagemaker = embedded_aws.client("sagemaker")
    code = upload_script(s3, bucket, SLEEPING)
    stopped, timed_out = unique("stop"), unique("timeout")
    sagemaker.create_training_job(**job_request(stopped, bucket, code))
    sagemaker.create_training_job(**job_request(timed_out, bucket, code, StoppingCondition={"MaxRuntimeInSeconds": 3}))
    deadline = time.monotonic() + 60
    while sagemaker.describe_training_job(TrainingJobName=stopped)["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sagemaker.stop_training_job(TrainingJobName=stopped)
    assert sagemaker.describe_training_job(TrainingJobName=stopped)["TrainingJobStatus"] == "Stopping"
    described = wait_for_job(sagemaker, stopped, timeout=60)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped")
    described = wait_for_job(sagemaker, timed_out, timeout=60)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert described["TrainingTimeInSeconds"] < 30


def test_two_instances_cooperate(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    name = unique("multi")
    request = job_request(name, bucket, upload_script(embedded_aws.client("s3"), bucket, ALL_REDUCE))
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name, timeout=240)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    streams = log_lines(embedded_aws.client("logs"), name)
    assert sorted(stream.split("/")[1].rsplit("-", 1)[0] for stream in streams) == ["algo-1", "algo-2"]
    results = sorted(line for lines in streams.values() for line in lines if "all_reduce=" in line)
    assert results == ["rank 0 of 2 all_reduce=3.0", "rank 1 of 2 all_reduce=3.0"]
    # Per instance, as SageMaker reports it (the bill is BillableTimeInSeconds * InstanceCount).
    assert described["BillableTimeInSeconds"] == described["TrainingTimeInSeconds"]


def _pool_status(sagemaker: Any, name: str) -> dict[str, Any]:
    return sagemaker.describe_training_job(TrainingJobName=name).get("WarmPoolStatus", {})


def test_warm_pool_lifecycle(embedded_aws: Any, bucket: str) -> None:
    s3 = embedded_aws.client("s3")
    sagemaker = embedded_aws.client("sagemaker")
    code = upload_script(s3, bucket, "print('warm')\n")
    resources = {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "KeepAlivePeriodInSeconds": 600,
    }
    first, second, third = unique("pool-a"), unique("pool-b"), unique("pool-c")

    sagemaker.create_training_job(**job_request(first, bucket, code, ResourceConfig=dict(resources)))
    assert wait_for_job(sagemaker, first)["TrainingJobStatus"] == "Completed"
    assert _pool_status(sagemaker, first)["Status"] == "Available"
    listed = sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]
    assert first in [item["TrainingJobName"] for item in listed]

    # A matching job reuses the pool.
    sagemaker.create_training_job(**job_request(second, bucket, code, ResourceConfig=dict(resources)))
    assert _pool_status(sagemaker, first)["Status"] == "Reused"
    assert _pool_status(sagemaker, first)["ReusedByJob"] == second
    assert wait_for_job(sagemaker, second)["TrainingJobStatus"] == "Completed"
    assert _pool_status(sagemaker, second)["Status"] == "Available"

    # Released by the operator.
    sagemaker.update_training_job(TrainingJobName=second, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    released = _pool_status(sagemaker, second)
    assert released["Status"] == "Terminated" and "ResourceRetainedBillableTimeInSeconds" in released
    listed = sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]
    assert {first, second}.isdisjoint(item["TrainingJobName"] for item in listed)

    # Expires after the keep-alive period.
    sagemaker.create_training_job(
        **job_request(third, bucket, code, ResourceConfig={**resources, "KeepAlivePeriodInSeconds": 2})
    )
    assert wait_for_job(sagemaker, third)["TrainingJobStatus"] == "Completed"
    assert _pool_status(sagemaker, third)["Status"] == "Available"
    time.sleep(3)
    assert _pool_status(sagemaker, third)["Status"] == "Terminated"


def test_no_warm_pool_without_quota(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    name = unique("cold")
    # ml.m5.2xlarge has a warm-pool quota of 0 in config/local.yaml: the job runs cold, silently.
    request = job_request(name, bucket, upload_script(embedded_aws.client("s3"), bucket, "print(1)\n"))
    request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = 600
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name)
    assert described["TrainingJobStatus"] == "Completed" and "WarmPoolStatus" not in described


def _sync_machine(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Arguments": request,
                "Output": {
                    "status": "{% $states.result.TrainingJobStatus %}",
                    "model": "{% $states.result.ModelArtifacts.S3ModelArtifacts %}",
                },
                "Catch": [
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "Next": "Failed",
                        "Output": {
                            "error": "{% $states.errorOutput.Error %}",
                            "reason": "{% $parse($states.errorOutput.Cause).FailureReason %}",
                        },
                    }
                ],
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "TrainingFailed", "Cause": "{% $states.input.reason %}"},
        },
    }


@pytest.mark.parametrize(("script", "status"), [("print('ok')\n", "SUCCEEDED"), (FAILING, "FAILED")])
def test_state_machine_sync_waits_for_the_job(embedded_aws: Any, bucket: str, script: str, status: str) -> None:
    sfn = embedded_aws.client("stepfunctions")
    name = unique("sync")
    request = job_request(name, bucket, upload_script(embedded_aws.client("s3"), bucket, script))
    machine = sfn.create_state_machine(
        name=unique("m"), definition=json.dumps(_sync_machine(request)), roleArn=request["RoleArn"]
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    result = wait_for_execution(sfn, started["executionArn"])
    assert result["status"] == status
    if status == "SUCCEEDED":
        assert json.loads(result["output"]) == {
            "status": "Completed",
            "model": f"s3://{bucket}/output/{name}/output/model.tar.gz",
        }
    else:
        assert (result["error"], result["cause"]) == (
            "TrainingFailed",
            "AlgorithmError: CUDA out of memory (simulated)",
        )


@pytest.mark.parametrize(
    ("resources", "error", "code"),
    [
        # SageMaker's model has ResourceLimitExceeded: the optimized integration names it after its exception class.
        ({"InstanceType": "ml.c5.xlarge"}, "SageMaker.ResourceLimitExceededException", "ResourceLimitExceeded"),
        # ValidationException is not in the model: the service's base exception.
        ({"InstanceType": "ml.m5.huge"}, "SageMaker.AmazonSageMakerException", "ValidationException"),
    ],
)
def test_sync_request_rejected_has_the_error_name_step_functions_gives(
    embedded_aws: Any, bucket: str, resources: dict[str, Any], error: str, code: str
) -> None:
    sfn = embedded_aws.client("stepfunctions")
    request = job_request(unique("rejected"), bucket, "s3://x/y.tar.gz")
    request["ResourceConfig"].update(resources)  # ml.c5.xlarge: quota 0 in config/local.yaml
    definition = _sync_machine(request)
    definition["States"]["Train"]["Catch"][0]["ErrorEquals"] = [error]
    definition["States"]["Train"]["Catch"][0]["Output"] = {"cause": "{% $states.errorOutput.Cause %}"}
    definition["States"]["Failed"] = {"Type": "Pass", "End": True}
    machine = sfn.create_state_machine(name=unique("m"), definition=json.dumps(definition), roleArn=request["RoleArn"])
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    result = wait_for_execution(sfn, started["executionArn"])
    assert result["status"] == "SUCCEEDED", result
    cause = json.loads(result["output"])["cause"]
    assert f"(Service: AmazonSageMaker; Status Code: 400; Error Code: {code}; Request ID: " in cause
