"""The SageMaker training contract as the toolkit hands it to the script: `SM_*` environment variables.

Read once into a typed object so the rest of the code never touches `os.environ` directly. Every field
has a fallback for running the script by hand outside a job (one host, /opt/ml paths).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")
CHECKPOINT_DIR_ENV = "SM_CHECKPOINT_DIR"
"""Overrides where checkpoints go. SageMaker syncs `CheckpointConfig.LocalPath` (default /opt/ml/checkpoints)
with S3; locally there is no /opt/ml, so the embedded AWS points this at each host's own folder."""


@dataclass(frozen=True)
class SageMakerEnvironment:
    hosts: list[str]
    current_host: str
    num_gpus: int
    channels: dict[str, Path]
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    input_dir: Path
    checkpoint_dir: Path
    # The seed's Estimator passes these as `environment=`: the instance count it asked for and the bucket
    # that holds model weights. Both optional.
    node_number: int | None = None
    model_s3_bucket: str | None = None
    instance_type: str = "local"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> SageMakerEnvironment:
        hosts = json.loads(environ.get("SM_HOSTS", '["algo-1"]'))
        current_host = environ.get("SM_CURRENT_HOST", hosts[0])
        if current_host not in hosts:
            raise ValueError(f"SM_CURRENT_HOST={current_host!r} is not one of SM_HOSTS={hosts}")
        output_dir = Path(environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
        node_number = int(environ["NODE_NUMBER"]) if environ.get("NODE_NUMBER") else None
        if node_number is not None and node_number != len(hosts):
            # A mismatch means the notebook's environment and the job's instance count disagree; the
            # hosts list is what the cluster really has, so it wins.
            log.warning("NODE_NUMBER=%s but SM_HOSTS lists %d hosts; using SM_HOSTS", node_number, len(hosts))
        return cls(
            hosts=list(hosts),
            current_host=current_host,
            num_gpus=int(environ.get("SM_NUM_GPUS", "0") or 0),
            channels={
                key.removeprefix("SM_CHANNEL_").lower(): Path(value)
                for key, value in environ.items()
                if key.startswith("SM_CHANNEL_") and value
            },
            model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
            output_dir=output_dir,
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", str(output_dir / "data"))),
            input_dir=Path(environ.get("SM_INPUT_DIR", "/opt/ml/input")),
            checkpoint_dir=Path(environ.get(CHECKPOINT_DIR_ENV) or DEFAULT_CHECKPOINT_DIR),
            node_number=node_number,
            model_s3_bucket=environ.get("MODEL_S3_BUCKET") or None,
            instance_type=environ.get("SM_CURRENT_INSTANCE_TYPE") or "local",
        )

    @property
    def node_rank(self) -> int:
        """This host's position in SM_HOSTS, which SageMaker sorts the same way on every host."""
        return self.hosts.index(self.current_host)

    @property
    def failure_file(self) -> Path:
        """SageMaker reports the first 1024 characters of this file as the job's FailureReason."""
        return self.output_dir / "failure"
