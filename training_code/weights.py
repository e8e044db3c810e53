"""Fast pull of base model weights from S3 (the seed's "large-model notice"), cached in the warm pool.

A File-mode `model` channel copies the weights before the script starts, at the speed of SageMaker's
download. For tens of GB, `s5cmd` with many parallel workers is several times faster, and it runs once
per host, before the torchrun workers start. The image built from training_code/Dockerfile has s5cmd;
where it is missing (a laptop, the embedded AWS) boto3 does the same copy more slowly.

Warm pools: SageMaker keeps `SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY` (/opt/ml/sagemaker/warmpoolcache)
across the jobs of one pool and deletes it with the pool. With it set, the weights go there, under a key
made of the S3 objects' keys and ETags (one ListObjectsV2 of the prefix with the job's own credentials:
no manifest to keep in step with the upload). A job on a reused pool whose prefix still lists the same
objects finds them and skips the download; an object changed in S3 has a new ETag, so a new key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

WARM_POOL_CACHE_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"

# Marks a finished pull so workers, and a warm-pool re-run, find the weights instead of copying again.
_DONE_MARKER = ".trainstack-pulled-from"


def resolve_s3_uri(uri: str, model_s3_bucket: str | None) -> str:
    """`s3://bucket/prefix` as given, or a bare prefix inside the MODEL_S3_BUCKET bucket."""
    if uri.startswith("s3://"):
        return uri
    if not model_s3_bucket:
        raise ValueError(f"model_s3_uri={uri!r} has no s3:// bucket and MODEL_S3_BUCKET is not set")
    return f"s3://{model_s3_bucket}/{uri.lstrip('/')}"


def local_weights_dir(input_dir: Path) -> Path:
    # Under /opt/ml/input, which sits on the job's ML storage volume (VolumeSizeInGB); /tmp is the small
    # container root disk and cannot hold large weights.
    return input_dir / "data" / "model-from-s3"


def fetch_model(uri: str, input_dir: Path, environ: Mapping[str, str]) -> Path:
    """The base model under `uri`, from the warm pool's cache when it holds these exact objects."""
    cache = environ.get(WARM_POOL_CACHE_ENV)
    if not cache:
        return pull_weights(uri, local_weights_dir(input_dir), environ)
    key = objects_key(uri)
    destination = Path(cache) / "models" / key
    if (destination / _DONE_MARKER).is_file():
        print(f"warm-pool cache hit: {uri} (key {key}) in {destination}; no download", flush=True)
        return destination
    print(f"warm-pool cache miss: {uri} (key {key}); downloading into {destination}", flush=True)
    return pull_weights(uri, destination, environ)


def objects_key(uri: str) -> str:
    """A digest of every object's key and ETag under the prefix `uri`: changes when any object does."""
    import boto3

    bucket, prefix = _split(uri)
    listing = []
    for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        listing.extend((item["Key"], item["ETag"], item["Size"]) for item in page.get("Contents", []))
    if not listing:
        raise FileNotFoundError(f"no objects under {uri}")
    return hashlib.sha256(json.dumps(sorted(listing)).encode()).hexdigest()[:32]


def pull_weights(uri: str, destination: Path, environ: Mapping[str, str]) -> Path:
    """Copy every object under `uri` (a prefix) into `destination`; a no-op if it was already pulled."""
    marker = destination / _DONE_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == uri:
        return destination
    destination.mkdir(parents=True, exist_ok=True)
    s5cmd = shutil.which("s5cmd")
    if s5cmd:
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        endpoint_flags = ["--endpoint-url", endpoint] if endpoint else []
        command = [s5cmd, *endpoint_flags, "cp", f"{uri.rstrip('/')}/*", f"{destination}/"]
        log.info("pulling weights with s5cmd: %s", command)
        subprocess.run(command, check=True)
    else:
        log.warning("s5cmd not on PATH; pulling %s with boto3 (slower)", uri)
        _pull_with_boto3(uri, destination)
    marker.write_text(uri, encoding="utf-8")
    return destination


# What a Hugging Face model folder holds besides config, tokenizer and templates.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt")


def pull_small_files(uri: str, destination: Path) -> Path:
    """Every object under `uri` except weight files (config, tokenizer, chat template): a few MB at most."""
    destination.mkdir(parents=True, exist_ok=True)
    _pull_with_boto3(uri, destination, skip_suffixes=WEIGHT_SUFFIXES)
    return destination


def _pull_with_boto3(uri: str, destination: Path, skip_suffixes: tuple[str, ...] = ()) -> None:
    import boto3

    bucket, prefix = _split(uri)
    s3 = boto3.client("s3")
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/") or key.endswith(skip_suffixes):
                continue
            target = destination / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            found = True
    if not found:
        raise FileNotFoundError(f"no objects under {uri}")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.rstrip("/") + "/" if prefix else ""
