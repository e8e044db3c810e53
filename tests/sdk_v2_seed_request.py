"""The seed's Estimator cell with the SageMaker SDK v2, its CreateTrainingJob request printed as JSON, never sent.

Run by tests/test_notebooks.py with an interpreter that has SDK v2 (.venv-sdk's python with .sdk-v2 first
on PYTHONPATH, see requirements-sdk-v2.txt) against the embedded AWS: the SDK really packs and uploads
source_dir (under the platform's code/ prefix), then botocore validates the request and
trainstack_notebook.stop_create_training_job keeps it instead of sending it.

    python sdk_v2_seed_request.py SOURCE_DIR ENTRY_POINT INSTANCE_TYPE INSTANCE_COUNT KEEP_ALIVE TRAIN_URI VAL_URI
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))

import boto3
import sagemaker
import trainstack_notebook as tn
from sagemaker.estimator import Estimator


def main() -> None:
    source_dir, entry_point, instance_type, count, keep_alive, train_uri, val_uri = sys.argv[1:8]
    resources = tn.load_resources()
    boto_session = boto3.Session(region_name=resources.region)
    tn.stop_create_training_job(boto_session)
    session = sagemaker.Session(boto_session=boto_session, default_bucket=resources.artifacts_bucket)

    # The seed's cell, with the platform's role, image and buckets in place of the notebook's own.
    instance_count = int(count)
    envs = {"NODE_NUMBER": str(instance_count), "MODEL_S3_BUCKET": resources.data_bucket}
    est = Estimator(
        role=resources.execution_role_arn,
        entry_point=entry_point,
        source_dir=source_dir,
        base_job_name="trainstack-byo",
        instance_count=instance_count,
        instance_type=instance_type,
        image_uri=resources.image_uri,
        environment=envs,
        max_run=3600 * 24 * 2,
        keep_alive_period_in_seconds=int(keep_alive),
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
        # The SDK's defaults are the session bucket's root; the platform's roles use code/ and output/.
        code_location=f"s3://{resources.artifacts_bucket}/code",
        output_path=f"s3://{resources.artifacts_bucket}/output/",
        # The platform's buckets refuse objects under any other key, and the SDK's default for the code upload
        # is `aws:kms` with no key id, i.e. the AWS managed key: name the platform's key (the code upload uses it
        # because code_location is in the output bucket).
        output_kms_key=resources.kms_key_arn,
    )
    data_channel = {"train123": train_uri, "val123": val_uri}
    try:
        est.fit(data_channel, wait=False)
    except tn.RequestCaptured as captured:
        print(json.dumps(captured.request, default=str))
        return
    raise SystemExit("CreateTrainingJob was not captured")


if __name__ == "__main__":
    main()
