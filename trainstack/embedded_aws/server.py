"""The embedded AWS: moto's server on 127.0.0.1 plus the adapters that close its gaps.

`EmbeddedAws` starts it in this process (a werkzeug server thread); `python -m trainstack.embedded_aws up`
runs the same thing in a background process. moto keeps its state in module globals, so one process
holds one embedded AWS at a time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from trainstack.config import EnvironmentConfig, load_environment

from . import (
    aws_sdk_service_names,
    cloudformation_change_sets,
    cloudformation_custom_resources,
    cloudformation_kms_tags,
    cloudformation_no_value,
    cloudformation_resource_policies,
    cloudformation_ssm_parameter_tags,
    cloudformation_state_machines,
    cloudformation_template_url,
    cloudformation_unsupported_types,
    events_step_functions_targets,
    execution_names,
    jsonata_evaluator,
    jsonata_hash,
    logs_kms_keys,
    sagemaker_notebook_platforms,
    sagemaker_sync_integration,
    step_functions_history_limit,
    step_functions_history_pages,
    step_functions_json_paths,
    step_functions_sdk_timestamps,
    step_functions_start_execution,
    step_functions_status_events,
    step_functions_stop_execution,
    step_functions_task_credentials,
)
from . import time_scale as time_scale_knob  # `time_scale` is EmbeddedAws's argument
from .assumed_role_credentials import forget_sessions
from .capacity_errors import capacity_error_control
from .delayed_calls import DelayedCalls, delay_control
from .iam_enforcement import IamEnforcement
from .json_protocol import DUMMY_CREDENTIAL, AdapterApplication, JsonHandler, endpoint_client
from .sagemaker_quotas import SageMakerQuotaHandler, SageMakerQuotaTable
from .sagemaker_training_api import SageMakerTrainingHandler
from .step_functions_test_state import TestStateHandler
from .throttling import Throttle, ThrottleControl
from .training_executor import TrainingExecutor
from .validate_state_machine_definition import ValidateDefinitionHandler
from .warm_pool_seeding import seed_warm_pools_control

_applied = False
_running_lock = threading.Lock()
_running: EmbeddedAws | None = None

ACCESS_KEY = DUMMY_CREDENTIAL


def apply_adapters() -> None:
    """Patch moto in this process (idempotent). Only the adapter modules touch moto's internals."""
    global _applied
    if _applied:
        return
    jsonata_evaluator.apply()
    jsonata_hash.apply()
    aws_sdk_service_names.apply()
    cloudformation_change_sets.apply()
    cloudformation_custom_resources.apply()
    cloudformation_kms_tags.apply()
    cloudformation_no_value.apply()
    cloudformation_ssm_parameter_tags.apply()
    cloudformation_resource_policies.apply()
    cloudformation_unsupported_types.apply()
    cloudformation_state_machines.apply()
    cloudformation_template_url.apply()
    execution_names.apply()
    step_functions_history_limit.apply()
    step_functions_history_pages.apply()
    step_functions_sdk_timestamps.apply()
    step_functions_json_paths.apply()
    step_functions_start_execution.apply()
    step_functions_stop_execution.apply()
    step_functions_status_events.apply()
    events_step_functions_targets.apply()
    logs_kms_keys.apply()
    sagemaker_notebook_platforms.apply()
    sagemaker_sync_integration.apply()
    step_functions_task_credentials.apply()
    time_scale_knob.apply()
    _applied = True


class EmbeddedAws:
    """An AWS endpoint for one environment (default: `local`), usable as a context manager.

    `work_dir` holds the training jobs' host folders; a temporary folder (removed on stop) when omitted.
    `time_scale` (0 < factor <= 1) makes waits for the clock run faster (`time_scale.py`); None reads
    TRAINSTACK_TIME_SCALE, and real time (1) without it.
    """

    def __init__(
        self,
        config: EnvironmentConfig | None = None,
        work_dir: Path | None = None,
        port: int = 0,
        time_scale: float | None = None,
    ) -> None:
        self.config = config or load_environment("local")
        if not self.config.embedded:
            raise ValueError(f"environment '{self.config.name}' is not embedded (embedded: true); refusing to fake it")
        self.region = self.config.region
        self.account = self.config.account
        self._requested_port = port
        self.time_scale = (
            time_scale_knob.factor_from_environment()
            if time_scale is None
            else time_scale_knob.parse_factor(time_scale, "EmbeddedAws(time_scale=...)")
        )
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="trainstack-aws-"))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.executor: TrainingExecutor | None = None
        self.throttle = Throttle()
        self.delays = DelayedCalls()
        self.iam: IamEnforcement | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> EmbeddedAws:
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError(f"an embedded AWS already runs in this process at {_running.endpoint_url}")
            _running = self
        apply_adapters()
        time_scale_knob.TIME_SCALE.set(self.time_scale)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        # The test switch answers first: a throttled call never reaches the handler that would serve it.
        # A delayed call waits before the throttle switch and the handlers see it.
        handlers: list[JsonHandler] = [self.delays, self.throttle]
        adapters = AdapterApplication(DomainDispatcherApplication(create_backend_app), handlers)
        app = ThrottleControl(adapters, self.throttle)
        app = delay_control(app, self.delays)
        app = seed_warm_pools_control(app, lambda: self.executor)
        app = time_scale_knob.time_scale_control(app)
        app = capacity_error_control(app, lambda: self.executor.capacity_errors if self.executor else None)
        # IAM is evaluated before anything answers: the test switches, our handlers and moto see only
        # allowed requests.
        self.iam = IamEnforcement(app, self.account, self.region)
        app = self.iam

        class QuietHandler(MotoRequestHandler):
            # One access-log line per request drowns test and CLI output; errors still reach the client.
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        self._server = make_server("127.0.0.1", self._requested_port, app, threaded=True, request_handler=QuietHandler)
        # Step Functions tasks call back into "localhost:$MOTO_PORT": point them at this server.
        os.environ["MOTO_PORT"] = str(self.port)
        self.executor = TrainingExecutor(
            self.endpoint_url, self.region, self.account, self.work_dir, self.config.quotas
        )
        handlers.append(SageMakerQuotaHandler(SageMakerQuotaTable(self.config.quotas, self.account, self.region)))
        handlers.append(SageMakerTrainingHandler(self.executor))
        handlers.append(ValidateDefinitionHandler())
        handlers.append(TestStateHandler(self.account, self.region))
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        # A fresh account: moto's state is process-global and may hold a previous run's resources.
        reset = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(reset).close()  # noqa: S310 - our own http:// endpoint, never a file: URL
        forget_sessions()
        return self

    def stop(self) -> None:
        global _running
        if self.executor is not None:
            self.executor.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        time_scale_knob.TIME_SCALE.set(1.0)  # the process's next embedded AWS starts in real time
        with _running_lock:
            _running = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what callers use

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Variables a subprocess (`npx cdk`, a notebook, the CLI) needs to talk to this endpoint only."""
        return endpoint_env(self.endpoint_url, self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        return endpoint_client(self.endpoint_url, self.region, service, **kwargs)


def endpoint_env(endpoint_url: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # No real profile, credentials file or instance metadata may be picked up by accident.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # botocore would send TestState to `sync-127.0.0.1`, which resolves nowhere.
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }


def subprocess_env(endpoint: dict[str, str]) -> dict[str, str]:
    """os.environ without any AWS_* of the caller's (profile, session token), plus `endpoint`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(endpoint)
    return env
