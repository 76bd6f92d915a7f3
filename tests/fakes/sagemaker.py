"""moto's SageMaker, with exactly its gaps filled, plus a sagemaker-runtime that serves for real.

`FakeSageMaker` starts moto's `ThreadedMotoServer` on 127.0.0.1 (port 0) and, because that
server runs in this process, registers handlers into moto's in-process SageMaker backend for
what moto 5.2 lacks (shared/research/sagemaker.md section 3). Everything else (models, configs,
tags, lists, S3, CloudWatch Logs, STS, Application Auto Scaling) is moto as shipped.

Gaps filled, each one what real SageMaker does:

1. **UpdateEndpoint** (moto: HTTP 500, NotImplementedError). Implemented with
   `RetainAllVariantProperties` / `ExcludeRetainedVariantProperties` (variants present before
   and after keep their live weight and instance count unless excluded; new variants take the
   config's initial values), a refusal while the endpoint is not InService ("Cannot update
   in-progress endpoint"), and the rollout below. `DeploymentConfig` is checked against
   SageMaker's documented rules (same variant names; no rolling on serverless or multi-variant
   endpoints; canary, linear and batch sizes; the documented maxima botocore does not check)
   and stored as `LastDeploymentConfig`. A blue/green update bakes: once the new fleet
   answers its pings, each traffic step waits `WaitIntervalInSeconds` (times `bake_scale`)
   and the AutoRollbackConfiguration alarms are read from moto's CloudWatch after each; one in
   ALARM rolls the update back (the old fleet keeps serving, InService on the old config, with
   a FailureReason). Requests keep going to the old fleet until the last step: the split
   between fleets during the bake is not simulated.
2. **Status transitions** (moto: always InService at once). CreateEndpoint -> Creating,
   UpdateEndpoint and UpdateEndpointWeightsAndCapacities -> Updating, DeleteEndpoint -> Deleting,
   then a worker thread finishes the change. A create or update *starts real serving processes*
   (`python -m endpointkit.serving`, one per variant whatever the instance count) from the
   model's `ModelDataUrl` (model.tar.gz downloaded from moto's S3) and the container's
   `Environment`, and waits for `GET /ping` for the variant's
   `ContainerStartupHealthCheckTimeoutInSeconds` (times `time_scale`, so tests can fail one in a
   second; PING_TIMEOUT_S without it; refused on serverless variants, as their budget is
   fixed). A variant that fails its ping leaves a create
   `Failed`, and rolls an update back (InService on the old config) - both with SageMaker's
   FailureReason ("The primary container for production variant X did not pass the ping
   health check...") - and its container log is written to CloudWatch Logs
   (`/aws/sagemaker/Endpoints/<name>`, stream `<variant>/<instance id>`), as on SageMaker.
3. **Duplicate names** (moto: silently overwrites). CreateModel, CreateEndpointConfig and
   CreateEndpoint with an existing name raise ValidationException "Cannot create already
   existing ...".
4. **Zero weights and partial UEWC** (moto drops weight 0 from DescribeEndpoint and clobbers
   the field a UEWC entry leaves out). DescribeEndpoint is answered from the fake's own variant
   summaries, which keep 0.0 weights and unspecified fields.
5. **ShadowProductionVariants** (moto: ignored). Stored with the config (one production and
   one shadow variant, as SageMaker requires), returned by DescribeEndpointConfig and, as
   summaries, by DescribeEndpoint; the runtime mirrors `shadow weight / production weight` of
   requests to the shadow, discarding its answers.
6. **Fault injection** (moto: none). `inject("UpdateEndpoint", "ThrottlingException")` makes the
   next call(s) of a control-plane action fail with that error (SageMaker's actions,
   Application Auto Scaling's, e.g. `inject("DescribeScalableTargets", "AccessDeniedException")`,
   and S3's PutObject); `after=True` lets the call take effect first (a lost answer);
   `inject_runtime(...)` does the same for invocations.
7. **sagemaker-runtime** (moto: canned bodies, no endpoint check, no errors). `runtime_url` is an
   HTTP server that reads the endpoint's live variants and weights from the moto backend,
   routes by weight or `X-Amzn-SageMaker-Target-Variant`, forwards to the variant's serving
   process, and answers in the runtime's wire format: `x-Amzn-Invoked-Production-Variant`,
   `X-Amzn-SageMaker-Custom-Attributes`; container errors as 424 `ModelError` with
   OriginalStatusCode / OriginalMessage / LogStreamArn; unknown endpoints and variants as 400
   `ValidationError`. InvokeEndpointWithResponseStream relays the container's chunked answer
   as AWS event-stream `PayloadPart` frames the moment each chunk arrives (cut into parts of
   at most `PART_BYTES`, so clients must reassemble frames split across parts, as on
   SageMaker); a stream the container breaks ends with a `ModelStreamError` event (ErrorCode
   `StreamBroken`). InvokeEndpointAsync reads its input from S3 and writes the answer under
   the endpoint's S3OutputPath, then publishes SageMaker's notification JSON to the config's
   SuccessTopic / ErrorTopic (moto's SNS, which delivers to moto's SQS subscribers).
"""

from __future__ import annotations

import binascii
import contextlib
import http.client
import io
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.s3.responses import S3Response
from moto.sagemaker.models import FakeEndpoint, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
PING_TIMEOUT_S = 60.0
PART_BYTES = 8  # the largest PayloadPart the response stream sends
JSON_TYPE = "application/json"
_INSTANCE_ONLY = frozenset(
    {"ContainerStartupHealthCheckTimeoutInSeconds", "ModelDataDownloadTimeoutInSeconds"}
)
ROOT = Path(__file__).resolve().parents[2]

_active: FakeSageMaker | None = None


class _AwsError(ServiceException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def _validation(message: str) -> _AwsError:
    return _AwsError("ValidationException", message)


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fault:
    """An injected error for the next `times` calls of `action` (None: every call)."""

    action: str
    code: str
    message: str
    status: int = 400
    times: int | None = 1
    fired: int = 0
    after: bool = False  # True: the call takes effect, then the error is reported anyway

    def take(self, action: str) -> bool:
        if action != self.action or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class Container:
    """One serving process answering for one variant."""

    endpoint: str
    variant: str
    model: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    instance_id: str = field(default_factory=lambda: f"i-{uuid.uuid4().hex[:17]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_stream(self) -> str:
        return f"{self.variant}/{self.instance_id}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class FakeSageMaker:
    """moto server + filled gaps + a real sagemaker-runtime. Use as a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""
        self.runtime_url = ""
        self.faults: list[Fault] = []
        self.runtime_faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.shadow_requests: Counter[str] = Counter()
        self.served: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()
        self._containers: dict[str, dict[str, Container]] = {}
        self._summaries: dict[str, dict[str, dict[str, Any]]] = {}
        self._shadow_summaries: dict[str, dict[str, dict[str, Any]]] = {}
        self._shadow_configs: dict[str, list[dict[str, Any]]] = {}
        self._deployment: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-sagemaker")
        self._runtime: ThreadingHTTPServer | None = None
        self._originals: dict[str, Any] = {}
        self._own: dict[str, bool] = {}
        self._aas_own = False
        self._aas_original: Callable[..., Any] | None = None
        self._s3_original: Callable[..., Any] | None = None
        self._random = random.Random(7)
        #: Real seconds per platform second for startup budgets (ContainerStartupHealthCheck-
        #: TimeoutInSeconds takes 60 at least); tests shrink it to fail a deploy in a second.
        self.time_scale = 1.0
        #: Real seconds every change (create, update, UpdateEndpointWeightsAndCapacities,
        #: delete) at least stays Creating / Updating / Deleting: minutes on SageMaker, scaled
        #: down, but never instant, so a retry that does not look first meets the in-progress
        #: endpoint, as on AWS.
        self.settle_s = 0.3
        #: Real seconds per platform second of a blue/green update's WaitIntervalInSeconds.
        self.bake_scale = 1.0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeSageMaker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("only one FakeSageMaker can run per process")
        _active = self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._install()
        runtime = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeHandler)
        runtime.daemon_threads = True
        self._runtime = runtime
        threading.Thread(target=runtime.serve_forever, daemon=True).start()
        self.runtime_url = f"http://127.0.0.1:{runtime.server_address[1]}"

    def stop(self) -> None:
        global _active
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            containers = [c for fleet in self._containers.values() for c in fleet.values()]
            self._containers.clear()
        for container in containers:
            container.stop()
        if self._runtime is not None:
            self._runtime.shutdown()
            self._runtime.server_close()
        self._uninstall()
        self.moto.stop()
        _active = None

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Backend settings that point the SageMaker backend at this fake."""
        return {
            "region": REGION,
            "endpoint_url": self.endpoint_url,
            "runtime_endpoint_url": self.runtime_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "role_arn": f"arn:aws:iam::{ACCOUNT}:role/endpointkit-test",
            "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/endpointkit:test",
            "instance_type": "ml.m5.large",
            "poll_s": 0.05,
            "max_poll_s": 0.2,
            **extra,
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @property
    def backend(self) -> Any:
        return sagemaker_backends[ACCOUNT][REGION]

    def running(self) -> list[Container]:
        """Serving processes that are alive now."""
        with self._lock:
            return [
                c
                for fleet in self._containers.values()
                for c in fleet.values()
                if c.proc.poll() is None
            ]

    def inject(
        self,
        action: str,
        code: str = "ThrottlingException",
        *,
        times: int | None = 1,
        status: int = 400,
        after: bool = False,
    ) -> Fault:
        """Fail the next `times` calls of `action` with `code`; `after=True` lets the call
        take effect first (a lost response: the client sees an error, the change happened)."""
        message = "Rate exceeded" if "Throttl" in code else f"injected {code}"
        fault = Fault(action, code, message, status=status, times=times, after=after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def inject_runtime(
        self, code: str, status: int, *, message: str = "injected", times: int | None = 1
    ) -> Fault:
        fault = Fault("InvokeEndpoint", code, message, status=status, times=times)
        with self._lock:
            self.runtime_faults.append(fault)
        return fault

    def set_instance_count(self, endpoint: str, variant: str, count: int) -> None:
        """What Application Auto Scaling does when it scales a variant."""
        with self._lock:
            summary = self._summaries[endpoint][variant]
            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count

    # -- moto patches ------------------------------------------------------------------------

    def _install(self) -> None:
        patches: dict[str, Callable[..., Any]] = {
            "call_action": _call_action,
            "create_model": _create_model,
            "create_endpoint_config": _create_endpoint_config,
            "describe_endpoint_config": _describe_endpoint_config,
            "create_endpoint": _create_endpoint,
            "describe_endpoint": _describe_endpoint,
            "update_endpoint": _update_endpoint,
            "update_endpoint_weights_and_capacities": _update_weights,
            "delete_endpoint": _delete_endpoint,
        }
        for name, fn in patches.items():
            self._own[name] = name in SageMakerResponse.__dict__
            self._originals[name] = getattr(SageMakerResponse, name, None)
            setattr(SageMakerResponse, name, self._only_ours(name, fn))
        # Application Auto Scaling is moto as shipped; only its faults are injected.
        self._aas_own = "call_action" in ApplicationAutoScalingResponse.__dict__
        aas_original = ApplicationAutoScalingResponse.call_action
        self._aas_original = aas_original
        host = self.endpoint_url.removeprefix("http://")

        def aas_call_action(response: ApplicationAutoScalingResponse) -> Any:
            if response.headers.get("host") != host:
                return aas_original(response)
            return _with_faults(response, aas_original)

        ApplicationAutoScalingResponse.call_action = aas_call_action  # type: ignore[method-assign]
        # S3 is moto as shipped too; PutObject can fail or lose its answer (history writes).
        self._s3_original = S3Response.put_object

        def s3_put_object(response: S3Response) -> Any:
            if response.headers.get("host") != host:
                return self._s3_original(response)
            return _s3_with_faults(response, self._s3_original)

        S3Response.put_object = s3_put_object  # type: ignore[method-assign]

    def _only_ours(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Patches act only on requests to this fake's server: any other moto server in the
        process (another test's) keeps moto's own behaviour."""
        original = self._originals[name]
        host = self.endpoint_url.removeprefix("http://")

        def handler(response: SageMakerResponse) -> Any:
            if response.headers.get("host") != host:
                return original(response)
            return fn(response)

        return handler

    def _uninstall(self) -> None:
        for name, original in self._originals.items():
            if not self._own[name]:
                delattr(SageMakerResponse, name)
            else:
                setattr(SageMakerResponse, name, original)
        self._originals.clear()
        if self._s3_original is not None:
            S3Response.put_object = self._s3_original  # type: ignore[method-assign]
            self._s3_original = None
        if self._aas_original is None:
            return
        if self._aas_own:
            ApplicationAutoScalingResponse.call_action = self._aas_original  # type: ignore[method-assign]
        else:
            del ApplicationAutoScalingResponse.call_action
        self._aas_original = None

    def _original(self, name: str) -> Callable[..., Any]:
        return self._originals[name]  # type: ignore[no-any-return]

    # -- rollouts ----------------------------------------------------------------------------

    def _config_variants(self, config_name: str) -> tuple[list[dict[str, Any]], list[dict]]:
        config = self.backend.endpoint_configs[config_name]
        return list(config.production_variants), list(self._shadow_configs.get(config_name, []))

    def _summary(
        self, variant: dict[str, Any], previous: dict[str, Any] | None, retain: set[str]
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {"VariantName": variant["VariantName"]}
        weight = float(variant.get("InitialVariantWeight", 1.0))
        if previous is not None and "DesiredWeight" in retain and "CurrentWeight" in previous:
            weight = previous["CurrentWeight"]
        summary["CurrentWeight"] = summary["DesiredWeight"] = weight
        if "ServerlessConfig" in variant:
            summary["CurrentServerlessConfig"] = summary["DesiredServerlessConfig"] = variant[
                "ServerlessConfig"
            ]
        else:
            count = int(variant.get("InitialInstanceCount", 1))
            if previous is not None and "DesiredInstanceCount" in retain:
                count = previous.get("CurrentInstanceCount", count)
            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
        summary["DeployedImages"] = [
            {
                "SpecifiedImage": self.backend.describe_model(
                    variant["ModelName"]
                ).primary_container.get("Image")
            }
        ]
        return summary

    def _rollout(
        self,
        name: str,
        config_name: str,
        *,
        creating: bool,
        retain: set[str],
        deployment: dict[str, Any] | None = None,
    ) -> None:
        time.sleep(self.settle_s)  # never instant, even when no container has to start
        endpoint: FakeEndpoint = self.backend.endpoints[name]
        production, shadows = self._config_variants(config_name)
        with self._lock:
            old_fleet = dict(self._containers.get(name, {}))
        started: dict[str, Container] = {}
        failure: tuple[str, Container | None, str] | None = None
        for variant in [*production, *shadows]:
            vname, model = variant["VariantName"], variant["ModelName"]
            current = old_fleet.get(vname)
            if current is not None and current.model == model and current.proc.poll() is None:
                continue  # unchanged variant: its instances keep serving
            try:
                container = self._start_container(name, vname, model)
            except Exception as exc:  # the model could not even be fetched
                failure = (vname, None, str(exc))
                break
            started[vname] = container
            problem = self._await_ping(container, self._startup_budget(variant))
            if problem is not None:
                failure = (vname, container, problem)
                break
        if failure is not None:
            vname, container, _problem = failure
            if container is not None:
                self._ship_logs(name, container)
            for c in started.values():
                c.stop()
            endpoint.failure_reason = (
                f"The primary container for production variant {vname} did not pass the ping "
                "health check. Please check CloudWatch logs for this endpoint."
            )
            endpoint.endpoint_status = "Failed" if creating else "InService"
            endpoint.last_modified_time = datetime.now(timezone.utc)
            return
        firing = self._bake(deployment) if deployment else []
        if firing:
            for c in started.values():
                c.stop()
            # Wording ours: SageMaker reports an alarm rollback in FailureReason and the
            # endpoint returns to InService on the old config (dg/deployment-guardrails-
            # auto-rollbacks.html).
            endpoint.failure_reason = (
                f"Deployment was rolled back: alarm(s) {', '.join(firing)} went into ALARM "
                "state during the deployment."
            )
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = datetime.now(timezone.utc)
            return
        previous = {
            **self._summaries.get(name, {}),
            **self._shadow_summaries.get(name, {}),
        }
        keep = {v["VariantName"] for v in [*production, *shadows]}
        with self._lock:
            fleet = {k: v for k, v in old_fleet.items() if k in keep and k not in started}
            fleet.update(started)
            self._containers[name] = fleet
            self._summaries[name] = {
                v["VariantName"]: self._summary(v, previous.get(v["VariantName"]), retain)
                for v in production
            }
            self._shadow_summaries[name] = {
                v["VariantName"]: self._summary(v, previous.get(v["VariantName"]), retain)
                for v in shadows
            }
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = [dict(s) for s in self._summaries[name].values()]
        if "DataCaptureConfig" not in retain:
            endpoint.data_capture_config = self.backend.endpoint_configs[
                config_name
            ].data_capture_config
        endpoint.failure_reason = None
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = datetime.now(timezone.utc)
        for vname, container in old_fleet.items():
            if fleet.get(vname) is not container:
                container.stop()  # the old fleet goes once traffic has moved

    def _bake(self, deployment: dict[str, Any]) -> list[str]:
        """Wait out a blue/green update's traffic steps, reading the auto-rollback alarms after
        each; the alarms in ALARM (none: the update goes ahead)."""
        policy = deployment.get("BlueGreenUpdatePolicy")
        if not policy:
            return []
        routing = policy["TrafficRoutingConfiguration"]
        steps = 1
        if routing["Type"] == "CANARY":
            steps = 2
        elif routing["Type"] == "LINEAR":
            steps = -(-100 // int(routing["LinearStepSize"]["Value"]))
        alarms = [
            a["AlarmName"]
            for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        ]
        cloudwatch = self.client("cloudwatch")
        for _ in range(steps):
            time.sleep(float(routing.get("WaitIntervalInSeconds", 0)) * self.bake_scale)
            if alarms:
                found = cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]
                firing = [a["AlarmName"] for a in found if a["StateValue"] == "ALARM"]
                if firing:
                    return firing
        return []

    def _start_container(self, endpoint: str, variant: str, model_name: str) -> Container:
        model = self.backend.describe_model(model_name)
        container_def = model.primary_container or (model.containers or [{}])[0]
        model_dir = self._fetch_model(model_name, container_def.get("ModelDataUrl"))
        port = _free_port()
        log_dir = self.workdir / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{endpoint}-{variant}-{port}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "ENDPOINTKIT_", "SAGEMAKER_", "AIP_"))
        }
        # SageMaker unpacks the model into /opt/ml/model; here it is `model_dir`, so paths
        # under it (a framework container's SAGEMAKER_SUBMIT_DIRECTORY) point there.
        env.update(
            {
                k: str(model_dir) + v.removeprefix("/opt/ml/model")
                if v.startswith("/opt/ml/model")
                else v
                for k, v in (container_def.get("Environment") or {}).items()
            }
        )
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        cmd = [
            sys.executable,
            "-m",
            "endpointkit.serving",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model-dir",
            str(model_dir),
            "--workers",
            "1",
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.workdir)
            )
        return Container(endpoint, variant, model_name, proc, port, log_path)

    def _fetch_model(self, model_name: str, data_url: str | None) -> Path:
        target = self.workdir / "models" / model_name
        if target.exists():
            return target
        target.mkdir(parents=True)
        if data_url:
            bucket, _, key = data_url.removeprefix("s3://").partition("/")
            body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
                tar.extractall(target, filter="data")
        return target

    def _startup_budget(self, variant: dict[str, Any]) -> float:
        """Real seconds the variant's container gets to answer /ping: its
        ContainerStartupHealthCheckTimeoutInSeconds (scaled), else PING_TIMEOUT_S."""
        budget = variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
        return PING_TIMEOUT_S if budget is None else float(budget) * self.time_scale

    def _await_ping(self, container: Container, budget_s: float = PING_TIMEOUT_S) -> str | None:
        """None once /ping answers 200; otherwise what went wrong."""
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            if container.proc.poll() is not None:
                return f"container exited with {container.proc.returncode}"
            try:
                with urllib.request.urlopen(f"{container.url}/ping", timeout=2) as response:
                    if response.status == 200:
                        return None
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", "replace")
                if "model_load_failed" in body or "failed to load" in body:
                    return body
            except OSError:
                pass
            time.sleep(0.05)
        return "ping timed out"

    def _ship_logs(self, endpoint: str, container: Container) -> None:
        """Copy a container's output to CloudWatch Logs, where SageMaker puts it."""
        logs = self.client("logs")
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=container.log_stream)
        time.sleep(0.2)  # let the container flush its last lines
        lines = [
            line for line in container.log_path.read_text(errors="replace").splitlines() if line
        ]
        now = int(time.time() * 1000)
        if lines:
            logs.put_log_events(
                logGroupName=group,
                logStreamName=container.log_stream,
                logEvents=[{"timestamp": now, "message": line[:8000]} for line in lines],
            )

    def _finish_delete(self, name: str) -> None:
        time.sleep(self.settle_s)
        with self._lock:
            fleet = self._containers.pop(name, {})
            self._summaries.pop(name, None)
            self._shadow_summaries.pop(name, None)
        for container in fleet.values():
            container.stop()
        self.backend.endpoints.pop(name, None)

    def _finish_weights(self, name: str) -> None:
        time.sleep(self.settle_s)
        endpoint = self.backend.endpoints.get(name)
        if endpoint is not None:
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = datetime.now(timezone.utc)

    # -- runtime -----------------------------------------------------------------------------

    def _route(self, name: str, target: str | None) -> tuple[Container, Container | None]:
        endpoint = self.backend.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating"):
            raise _RuntimeError(
                400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found."
            )
        with self._lock:
            summaries = dict(self._summaries.get(name, {}))
            shadows = dict(self._shadow_summaries.get(name, {}))
            fleet = dict(self._containers.get(name, {}))
        if target is not None:
            if target not in summaries:
                raise _RuntimeError(
                    400,
                    "ValidationError",
                    f'The variant(s) "[{target}]" not found for endpoint {_arn("endpoint", name)}.',
                )
            chosen = target
        else:
            weights = {k: float(v.get("CurrentWeight", 0.0)) for k, v in summaries.items()}
            serving = [k for k, w in weights.items() if w > 0]
            if not serving:
                raise _RuntimeError(
                    400, "ValidationError", f"Endpoint {name} has no variant with traffic."
                )
            chosen = self._random.choices(serving, weights=[weights[k] for k in serving])[0]
        shadow_container = None
        if shadows:
            sname, summary = next(iter(shadows.items()))
            primary = sum(float(v.get("CurrentWeight", 0.0)) for v in summaries.values()) or 1.0
            rate = float(summary.get("CurrentWeight", 0.0)) / primary
            if self._random.random() < rate:
                shadow_container = fleet.get(sname)
        return fleet[chosen], shadow_container


class _RuntimeError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


def _fake() -> FakeSageMaker:
    if _active is None:
        raise RuntimeError("no FakeSageMaker is running")
    return _active


# -- moto handlers (installed on SageMakerResponse; `self` is moto's response object) -------------


def _call_action(self: SageMakerResponse) -> Any:
    return _with_faults(self, _fake()._original("call_action"))


def _with_faults(self: Any, original: Callable[[Any], Any]) -> Any:
    """Count the action and answer it with the first injected fault that takes it."""
    fake = _fake()
    action = self._get_action()
    with fake._lock:
        fake.calls[action] += 1
        fault = next((f for f in fake.faults if f.take(action)), None)
    if fault is not None:
        if fault.after:
            original(self)
        # The JSON-1.1 error shape of AWS's generic errors (e.g. ThrottlingException), which
        # the services' models do not list, so moto's serializer would only warn about it.
        body = json.dumps({"__type": fault.code, "message": fault.message})
        headers = {
            "status": fault.status,
            "x-amzn-ErrorType": fault.code,
            "Content-Type": "application/x-amz-json-1.1",
        }
        return fault.status, headers, body
    return original(self)


def _s3_with_faults(self: S3Response, original: Callable[[S3Response], Any]) -> Any:
    """PutObject with the first injected "PutObject" fault that takes it (S3's XML error)."""
    fake = _fake()
    with fake._lock:
        fake.calls["PutObject"] += 1
        fault = next((f for f in fake.faults if f.take("PutObject")), None)
    if fault is None:
        return original(self)
    if fault.after:
        original(self)
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.code}</Code>"
        f"<Message>{fault.message}</Message></Error>"
    )
    return fault.status, {"Content-Type": "application/xml"}, body


def _create_model(self: SageMakerResponse) -> Any:
    name = self._get_param("ModelName")
    if name in self.sagemaker_backend._models:
        raise _validation(f'Cannot create already existing model "{_arn("model", name)}".')
    return _fake()._original("create_model")(self)


def _create_endpoint_config(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointConfigName")
    if name in self.sagemaker_backend.endpoint_configs:
        arn = _arn("endpoint-config", name)
        raise _validation(f'Cannot create already existing endpoint configuration "{arn}".')
    shadows = self._get_param("ShadowProductionVariants") or []
    production = self._get_param("ProductionVariants") or []
    if shadows and (len(shadows) != 1 or len(production) != 1):
        raise _validation(
            "You can only specify one variant for ProductionVariants and one variant for "
            "ShadowProductionVariants."
        )
    names = [v["VariantName"] for v in [*production, *shadows]]
    if len(set(names)) != len(names):
        raise _validation("Variant names must be unique within an endpoint configuration.")
    serverless = [v["VariantName"] for v in production if "ServerlessConfig" in v]
    if serverless and len(production) > 1:
        # docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, "Feature
        # exclusions": no multiple production variants on a serverless endpoint (wording ours).
        raise _validation(
            "Serverless endpoint configurations support a single production variant; got "
            f"{len(production)} ({', '.join(v['VariantName'] for v in production)})."
        )
    if shadows and (serverless or self._get_param("AsyncInferenceConfig")):
        # docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html: shadow variants
        # on serverless or asynchronous endpoints "lead to validation errors" (wording ours).
        kind = "serverless" if serverless else "asynchronous"
        raise _validation(f"Shadow variants are not supported for {kind} inference endpoints.")
    for variant in [*production, *shadows]:
        startup = sorted(set(variant) & _INSTANCE_ONLY)
        if "ServerlessConfig" in variant and startup:
            # Serverless budgets are fixed (3 minutes); the wording is ours, not SageMaker's.
            raise _validation(
                f"{', '.join(startup)} cannot be set for serverless production variant "
                f"{variant['VariantName']}."
            )
    for variant in shadows:
        self.sagemaker_backend.validate_production_variants([variant])
    result = fake._original("create_endpoint_config")(self)
    fake._shadow_configs[name] = [dict(v) for v in shadows]
    return result


def _describe_endpoint_config(self: SageMakerResponse) -> Any:
    fake = _fake()
    result = fake._original("describe_endpoint_config")(self)
    name = self._get_param("EndpointConfigName")
    shadows = fake._shadow_configs.get(name)
    if shadows:
        result.result["ShadowProductionVariants"] = shadows
    return result


def _create_endpoint(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointName")
    config = self._get_param("EndpointConfigName")
    if name in self.sagemaker_backend.endpoints:
        raise _validation(f'Cannot create already existing endpoint "{_arn("endpoint", name)}".')
    if config not in self.sagemaker_backend.endpoint_configs:
        raise _validation(
            f'Could not find endpoint configuration "{_arn("endpoint-config", config)}".'
        )
    result = fake._original("create_endpoint")(self)
    endpoint = self.sagemaker_backend.endpoints[name]
    endpoint.endpoint_status = "Creating"
    fake._pool.submit(_guard, fake._rollout, name, config, creating=True, retain=set())
    return result


def _describe_endpoint(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointName")
    endpoint = self.sagemaker_backend.endpoints.get(name)
    if endpoint is None:
        raise _validation(f'Could not find endpoint "{_arn("endpoint", name)}".')
    with fake._lock:
        summaries = [dict(v) for v in fake._summaries.get(name, {}).values()]
        shadows = [dict(v) for v in fake._shadow_summaries.get(name, {}).values()]
    response: dict[str, Any] = {
        "EndpointName": endpoint.endpoint_name,
        "EndpointArn": endpoint.arn,
        "EndpointConfigName": endpoint.endpoint_config_name,
        "EndpointStatus": endpoint.endpoint_status,
        "CreationTime": endpoint.creation_time,
        "LastModifiedTime": endpoint.last_modified_time,
    }
    if summaries:
        response["ProductionVariants"] = summaries
    if shadows:
        response["ShadowProductionVariants"] = shadows
    if endpoint.failure_reason:
        response["FailureReason"] = endpoint.failure_reason
    if endpoint.data_capture_config:
        response["DataCaptureConfig"] = {
            "EnableCapture": endpoint.data_capture_config.get("EnableCapture", False),
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": endpoint.data_capture_config.get(
                "InitialSamplingPercentage", 100
            ),
            "DestinationS3Uri": endpoint.data_capture_config.get("DestinationS3Uri", ""),
        }
    deployment = fake._deployment.get(name)
    if deployment:
        response["LastDeploymentConfig"] = deployment
    return ActionResult(response)


def _update_endpoint(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointName")
    config = self._get_param("EndpointConfigName")
    endpoint = self.sagemaker_backend.endpoints.get(name)
    if endpoint is None:
        raise _validation(f'Could not find endpoint "{_arn("endpoint", name)}".')
    if config not in self.sagemaker_backend.endpoint_configs:
        raise _validation(
            f'Could not find endpoint configuration "{_arn("endpoint-config", config)}".'
        )
    if endpoint.endpoint_status != "InService":
        raise _validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
    retain: set[str] = set()
    if self._get_param("RetainAllVariantProperties"):
        # VariantPropertyType (botocore's service model, API_VariantProperty.html): the
        # retained properties are DesiredInstanceCount, DesiredWeight and DataCaptureConfig;
        # excluding DataCaptureConfig is "Not currently supported", so with
        # RetainAllVariantProperties the endpoint keeps its data capture whatever the new
        # config says.
        retain = {"DesiredWeight", "DesiredInstanceCount", "DataCaptureConfig"}
        for item in self._get_param("ExcludeRetainedVariantProperties") or []:
            kind = item.get("VariantPropertyType")
            if kind == "DataCaptureConfig":
                raise _validation(
                    "ExcludeRetainedVariantProperties does not support DataCaptureConfig."
                )  # wording ours
            retain.discard(kind)
    deployment = self._get_param("DeploymentConfig")
    if deployment:
        _check_guardrails(fake, endpoint.endpoint_config_name, config, deployment)
        fake._deployment[name] = deployment
    endpoint.endpoint_status = "Updating"
    endpoint.last_modified_time = datetime.now(timezone.utc)
    fake._pool.submit(
        _guard,
        fake._rollout,
        name,
        config,
        creating=False,
        retain=retain,
        deployment=deployment or None,
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _check_guardrails(
    fake: FakeSageMaker, old_config: str, new_config: str, deployment: dict[str, Any]
) -> None:
    """SageMaker's rules for an UpdateEndpoint with a DeploymentConfig (wording ours)."""
    old_production, old_shadows = fake._config_variants(old_config)
    new_production, new_shadows = fake._config_variants(new_config)
    old_names = sorted(v["VariantName"] for v in [*old_production, *old_shadows])
    new_names = sorted(v["VariantName"] for v in [*new_production, *new_shadows])
    # dg/deployment-guardrails-exclusions.html: "your new endpoint configuration must have the
    # same variant name as the old endpoint configuration".
    if old_names != new_names:
        raise _validation(
            "Deployment guardrails need the new endpoint configuration to have the same "
            f"variant names as the old one: {old_names} before, {new_names} after."
        )
    rolling = deployment.get("RollingUpdatePolicy")
    # Same page: rolling deployments exclude serverless and multi-variant endpoints.
    if rolling and (
        len(new_production) > 1 or any("ServerlessConfig" in v for v in new_production)
    ):
        raise _validation(
            "Rolling deployments are not supported for serverless or multi-variant endpoints."
        )
    # API_TrafficRoutingConfig.html / API_RollingUpdatePolicy.html (percent of instances).
    routing = (deployment.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration")
    sizes = [
        ("CanarySize", (routing or {}).get("CanarySize"), 1, 50),
        ("LinearStepSize", (routing or {}).get("LinearStepSize"), 10, 50),
        ("MaximumBatchSize", (rolling or {}).get("MaximumBatchSize"), 5, 50),
    ]
    for field_name, size, low, high in sizes:
        if size and size.get("Type") == "CAPACITY_PERCENT" and not low <= size["Value"] <= high:
            raise _validation(f"{field_name} must be {low}-{high}% of the variant's capacity.")
    # The documented maxima botocore does not check (it checks minima only): API_Traffic-
    # RoutingConfig.html, API_BlueGreenUpdatePolicy.html, API_RollingUpdatePolicy.html.
    # Wording as SageMaker's constraint errors.
    blue_green = deployment.get("BlueGreenUpdatePolicy") or {}
    limits = [
        ("WaitIntervalInSeconds", (routing or {}).get("WaitIntervalInSeconds"), 3600),
        ("WaitIntervalInSeconds", (rolling or {}).get("WaitIntervalInSeconds"), 3600),
        ("TerminationWaitInSeconds", blue_green.get("TerminationWaitInSeconds"), 3600),
        (
            "MaximumExecutionTimeoutInSeconds",
            blue_green.get("MaximumExecutionTimeoutInSeconds")
            or (rolling or {}).get("MaximumExecutionTimeoutInSeconds"),
            28800,
        ),
    ]
    for field_name, value, high in limits:
        if value is not None and int(value) > high:
            raise _validation(
                f"1 validation error detected: Value '{value}' at '{field_name}' failed to "
                f"satisfy constraint: Member must have value less than or equal to {high}"
            )
    alarms = (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    if len(alarms) > 10:  # API_AutoRollbackConfig.html: 1-10 alarms
        raise _validation(
            "1 validation error detected: Value at 'deploymentConfig.autoRollbackConfiguration"
            ".alarms' failed to satisfy constraint: Member must have length less than or "
            "equal to 10"
        )


def _update_weights(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointName")
    desired = self._get_param("DesiredWeightsAndCapacities") or []
    endpoint = self.sagemaker_backend.endpoints.get(name)
    if endpoint is None:
        raise _validation(f'Could not find endpoint "{_arn("endpoint", name)}".')
    if endpoint.endpoint_status != "InService":
        raise _validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
    with fake._lock:
        summaries = fake._summaries.get(name, {})
        seen: set[str] = set()
        for item in desired:
            vname = item.get("VariantName")
            if vname in seen:
                raise _validation(f'The variant name "{vname}" was non-unique within the request.')
            seen.add(vname)
            if vname not in summaries:
                raise _validation(
                    f'The variant name(s) "{vname}" is/are not present within endpoint '
                    f'configuration "{endpoint.endpoint_config_name}".'
                )
        for item in desired:
            summary = summaries[item["VariantName"]]
            if item.get("DesiredWeight") is not None:
                summary["CurrentWeight"] = summary["DesiredWeight"] = float(item["DesiredWeight"])
            if item.get("DesiredInstanceCount") is not None:
                count = int(item["DesiredInstanceCount"])
                summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
        endpoint.production_variants = [dict(s) for s in summaries.values()]
    endpoint.endpoint_status = "Updating"
    fake._pool.submit(_guard, fake._finish_weights, name)
    return ActionResult({"EndpointArn": endpoint.arn})


def _delete_endpoint(self: SageMakerResponse) -> Any:
    fake = _fake()
    name = self._get_param("EndpointName")
    endpoint = self.sagemaker_backend.endpoints.get(name)
    if endpoint is None:
        raise _validation(f'Could not find endpoint "{_arn("endpoint", name)}".')
    endpoint.endpoint_status = "Deleting"
    fake._pool.submit(_guard, fake._finish_delete, name)
    return ActionResult({})


def _guard(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # a worker must never die silently: print for the test log
        import traceback

        traceback.print_exc()


# -- the runtime ---------------------------------------------------------------------------------


def _event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message (string headers only)."""
    encoded = b""
    for key, value in headers.items():
        k, v = key.encode(), value.encode()
        encoded += struct.pack("!B", len(k)) + k + struct.pack("!BH", 7, len(v)) + v
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude_crc = struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + prelude_crc + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_POST(self) -> None:
        fake = _fake()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "endpoints":
            self._error(_RuntimeError(404, "UnknownOperationException", "not found"))
            return
        name, kind = parts[1], parts[2]
        try:
            with fake._lock:
                fault = next((f for f in fake.runtime_faults if f.take("InvokeEndpoint")), None)
            if fault is not None:
                raise _RuntimeError(fault.status, fault.code, fault.message)
            if kind == "invocations":
                self._invoke(fake, name, body, stream=False)
            elif kind == "invocations-response-stream":
                self._invoke(fake, name, body, stream=True)
            elif kind == "async-invocations":
                self._async(fake, name)
            else:
                raise _RuntimeError(404, "UnknownOperationException", f"no route {kind}")
        except _RuntimeError as exc:
            self._error(exc)

    def _forward(
        self, container: Container, body: bytes, content_type: str, accept: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        request = urllib.request.Request(
            f"{container.url}/invocations", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def _invoke(self, fake: FakeSageMaker, name: str, body: bytes, *, stream: bool) -> None:
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        container, shadow = fake._route(name, target)
        content_type = self.headers.get("Content-Type") or "application/octet-stream"
        accept = self.headers.get("X-Amzn-SageMaker-Accept" if stream else "Accept")
        if shadow is not None:
            with fake._lock:
                fake.shadow_requests[name] += 1
            fake._pool.submit(_guard, self._forward, shadow, body, content_type, accept)
        if stream:
            self._relay_stream(fake, name, container, body, content_type, accept)
            return
        status, headers, answer = self._forward(container, body, content_type, accept)
        with fake._lock:
            fake.served[(name, container.variant)] += 1
        if status >= 300:
            raise _model_error(name, container, status, answer)
        lowered = {k.lower(): v for k, v in headers.items()}
        out_type = lowered.get("content-type", "application/json")
        self.send_response(200)
        self.send_header("x-Amzn-Invoked-Production-Variant", container.variant)
        if "x-amzn-sagemaker-custom-attributes" in lowered:
            self.send_header(
                "X-Amzn-SageMaker-Custom-Attributes", lowered["x-amzn-sagemaker-custom-attributes"]
            )
        self.send_header("Content-Type", out_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _relay_stream(
        self,
        fake: FakeSageMaker,
        name: str,
        container: Container,
        body: bytes,
        content_type: str,
        accept: str | None,
    ) -> None:
        """Post to the container's /invocations and relay each chunk of its answer as
        PayloadPart events the moment it arrives (chunked transfer encoding both ways)."""
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=60)
        try:
            try:
                conn.request("POST", "/invocations", body=body, headers=headers)
                response = conn.getresponse()
            except OSError as exc:
                raise _RuntimeError(
                    500, "InternalFailure", f"the model container is unreachable: {exc}"
                ) from None
            with fake._lock:
                fake.served[(name, container.variant)] += 1
            if response.status >= 300:
                raise _model_error(name, container, response.status, response.read())
            lowered = {k.lower(): v for k, v in response.getheaders()}
            self.send_response(200)
            self.send_header("x-Amzn-Invoked-Production-Variant", container.variant)
            if "x-amzn-sagemaker-custom-attributes" in lowered:
                self.send_header(
                    "X-Amzn-SageMaker-Custom-Attributes",
                    lowered["x-amzn-sagemaker-custom-attributes"],
                )
            self.send_header(
                "X-Amzn-SageMaker-Content-Type", lowered.get("content-type", "application/json")
            )
            self.send_header("Content-Type", "application/vnd.amazon.eventstream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                try:
                    data = response.read1(65536)
                except (http.client.HTTPException, OSError):
                    self._write_chunk(
                        _event_frame(
                            {
                                ":message-type": "exception",
                                ":exception-type": "ModelStreamError",
                                ":content-type": "application/json",
                            },
                            json.dumps(
                                {
                                    "Message": "Model stream broken: the model container "
                                    "closed the response before its end.",
                                    "ErrorCode": "StreamBroken",
                                }
                            ).encode(),
                        )
                    )
                    break
                if not data:
                    break
                self._write_chunk(
                    b"".join(
                        _event_frame(_PAYLOAD_PART, part) for part in _chunks(data, PART_BYTES)
                    )
                )
            self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _async(self, fake: FakeSageMaker, name: str) -> None:
        endpoint = fake.backend.endpoints.get(name)
        if endpoint is None:
            raise _RuntimeError(
                400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found."
            )
        config = fake.backend.endpoint_configs[endpoint.endpoint_config_name]
        output = (config.async_inference_config or {}).get("OutputConfig")
        if not output:
            raise _RuntimeError(
                400, "ValidationError", f"Endpoint {name} is not an asynchronous endpoint."
            )
        location = self.headers.get("X-Amzn-SageMaker-InputLocation", "")
        inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id") or uuid.uuid4().hex
        content_type = self.headers.get("X-Amzn-SageMaker-Content-Type") or "application/json"
        out_uri = f"{output['S3OutputPath'].rstrip('/')}/{inference_id}.out"
        fail_uri = (
            f"{output['S3FailurePath'].rstrip('/')}/{inference_id}-error.out"
            if output.get("S3FailurePath")
            else None
        )
        container, _ = fake._route(name, None)
        received = datetime.now(timezone.utc)
        topics = output.get("NotificationConfig") or {}

        def work() -> None:
            s3 = fake.client("s3")
            bucket, _, key = location.removeprefix("s3://").partition("/")
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            status, headers, answer = self._forward(container, data, content_type, None)
            # A failure goes to S3FailurePath; with none, only the error topic hears of it
            # (S3OutputPath takes "inference responses": API_AsyncInferenceOutputConfig).
            uri = out_uri if status < 300 else fail_uri
            if uri is not None:
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                with contextlib.suppress(Exception):
                    s3.create_bucket(Bucket=bucket)
                s3.put_object(Bucket=bucket, Key=key, Body=answer)
            topic = topics.get("SuccessTopic" if status < 300 else "ErrorTopic")
            if topic:
                note = _notification(
                    name, inference_id, location, content_type, received, status, uri, answer
                )
                types = [v for k, v in headers.items() if k.lower() == "content-type"]
                note["responseParameters"]["contentType"] = types[0] if types else JSON_TYPE
                fake.client("sns").publish(TopicArn=topic, Message=json.dumps(note))

        fake._pool.submit(_guard, work)
        payload = json.dumps({"InferenceId": inference_id}).encode()
        self.send_response(202)
        self.send_header("X-Amzn-SageMaker-OutputLocation", out_uri)
        if fail_uri:
            self.send_header("X-Amzn-SageMaker-FailureLocation", fail_uri)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, exc: _RuntimeError) -> None:
        payload = json.dumps({"Message": exc.message, "message": exc.message, **exc.extra}).encode()
        self.send_response(exc.status)
        self.send_header("x-amzn-ErrorType", exc.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


_PAYLOAD_PART = {
    ":message-type": "event",
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
}


def _model_error(name: str, container: Container, status: int, answer: bytes) -> _RuntimeError:
    """The runtime's 424 ModelError for a container's error answer."""
    kind = "client" if status < 500 else "server"
    text = answer.decode("utf-8", "replace")
    return _RuntimeError(
        424,
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{text}". See '
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
        f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in account {ACCOUNT} "
        "for more information.",
        {
            "OriginalStatusCode": status,
            "OriginalMessage": text,
            "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
            f"/aws/sagemaker/Endpoints/{name}:log-stream:{container.log_stream}",
        },
    )


def _notification(
    endpoint: str,
    inference_id: str,
    input_location: str,
    content_type: str,
    received: datetime,
    status: int,
    uri: str | None,  # the answer's (failures: the notification names no location)
    answer: bytes,
) -> dict[str, Any]:
    """The message asynchronous inference posts to the success or error topic, in the shape
    docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html shows."""

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    note: dict[str, Any] = {
        "awsRegion": REGION,
        "eventTime": stamp(datetime.now(timezone.utc)),
        "receivedTime": stamp(received),
        "invocationStatus": "Completed" if status < 300 else "Failed",
        "requestParameters": {
            "contentType": content_type,
            "endpointName": endpoint,
            "inputLocation": input_location,
        },
        "responseParameters": {"outputLocation": uri} if status < 300 else {},
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if status >= 300:
        kind = "client" if status < 500 else "server"
        text = answer[:200].decode("utf-8", "replace")
        note["failureReason"] = (
            f'ClientError: Received {kind} error ({status}) from model with message "{text}". '
            "See the SageMaker Endpoint logs in your account for more information."
        )
    return note


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
    if not data:
        yield b""


_shared: FakeSageMaker | None = None


def shared_fake(config: Any, workdir: Path) -> FakeSageMaker:
    """The process-wide fake for a pytest session, started on first use and stopped when the
    session ends (`config.add_cleanup`); moto's per-service start-up cost is paid once."""
    global _shared
    if _shared is None:
        fake = FakeSageMaker(workdir)
        fake.start()
        _shared = fake

        def stop() -> None:
            global _shared
            fake.stop()
            _shared = None

        config.add_cleanup(stop)
    return _shared


__all__ = ["ACCOUNT", "REGION", "Container", "FakeSageMaker", "Fault", "shared_fake"]
