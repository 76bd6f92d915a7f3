"""Environment (SAGEMAKER_*, AIP_*, ENDPOINTKIT_*) -> one immutable ``Settings`` object.

Precedence for each value: command-line flag (written into ``ENDPOINTKIT_*`` by ``__main__``) >
``ENDPOINTKIT_*`` > the platform's variable (Vertex ``AIP_*``, SageMaker ``SAGEMAKER_*``) > default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

MB = 1024 * 1024
SAGEMAKER_MAX_BYTES = 6 * MB  # InvokeEndpoint Body max: 6,291,456 bytes
VERTEX_MAX_BYTES = 1_572_864  # shared public endpoints: 1.5 MB (dedicated: 10 MB)
LOG_LEVELS = ("all", "sampled", "errors", "off")
MAX_ARCHIVE_BYTES = 32 * 1024 * MB  # extracted model.tar.gz; a gzip of zeros shrinks ~1000x
MAX_ARCHIVE_FILES = 100_000


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _int(env: Mapping[str, str], default: int, *names: str) -> int:
    raw = _first(env, *names)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{names[0]} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], default: float, *names: str) -> float:
    raw = _first(env, *names)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{names[0]} must be a number, got {raw!r}") from None


def _route(raw: str | None, default: str) -> str:
    route = raw or default
    return route if route.startswith("/") else "/" + route


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on extracting a downloaded ``model.tar.gz``: total file bytes and member count."""

    max_bytes: int = MAX_ARCHIVE_BYTES
    max_files: int = MAX_ARCHIVE_FILES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ArchiveLimits:
        """``ENDPOINTKIT_MAX_ARCHIVE_BYTES`` / ``ENDPOINTKIT_MAX_ARCHIVE_FILES``; ValueError on
        bad values."""
        return cls(
            max_bytes=_int(env, MAX_ARCHIVE_BYTES, "ENDPOINTKIT_MAX_ARCHIVE_BYTES"),
            max_files=_int(env, MAX_ARCHIVE_FILES, "ENDPOINTKIT_MAX_ARCHIVE_FILES"),
        )


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment, resolved once per process."""

    host: str = "0.0.0.0"
    port: int = 8080
    grpc_port: int | None = None  # OIP v2 over gRPC on this port too (grpc_server.py); off
    uds: str | None = None  # a Unix socket path: host and port are then not used
    model_dir: str = "/opt/ml/model"
    workers: int = 1
    predictor: str | None = None
    version: str | None = None
    model_name: str = "model"
    health_route: str = "/health"
    predict_route: str = "/predict"
    sagemaker_max_bytes: int = SAGEMAKER_MAX_BYTES
    vertex_max_bytes: int = VERTEX_MAX_BYTES
    oip_max_bytes: int = SAGEMAKER_MAX_BYTES
    max_in_flight: int = 512
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    request_timeout_s: float = 60.0
    grace_s: float = 25.0
    request_log: str = "sampled"
    log_sample_rate: float = 0.01
    default_accept: str = "application/json"
    max_batch_size: int | None = None
    max_latency_ms: float | None = None
    batch_strategy: str = "MULTI_RECORD"
    max_concurrent_transforms: int = 1
    max_payload_mb: int = 6
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Resolve settings from ``env`` (default ``os.environ``); ValueError on bad values."""
        env = dict(os.environ if env is None else env)
        request_log = env.get("ENDPOINTKIT_REQUEST_LOG", "sampled").lower()
        if request_log not in LOG_LEVELS:
            raise ValueError(
                f"ENDPOINTKIT_REQUEST_LOG must be one of {', '.join(LOG_LEVELS)}, "
                f"got {request_log!r}"
            )
        payload_mb = _int(env, 0, "SAGEMAKER_MAX_PAYLOAD_IN_MB")
        sm_default = payload_mb * MB if payload_mb > 0 else SAGEMAKER_MAX_BYTES
        sm_max = _int(env, sm_default, "ENDPOINTKIT_MAX_REQUEST_BYTES")
        batch_size = _int(env, 0, "ENDPOINTKIT_MAX_BATCH_SIZE")
        latency = _float(env, -1.0, "ENDPOINTKIT_MAX_LATENCY_MS")
        raw_strategy = env.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").upper().replace("_", "")
        strategy = raw_strategy.replace("RECORD", "_RECORD")
        grpc_port = _int(env, 0, "ENDPOINTKIT_GRPC_PORT")
        if not 0 <= grpc_port <= 65535:
            raise ValueError(f"ENDPOINTKIT_GRPC_PORT must be a port number, got {grpc_port}")
        return cls(
            host=env.get("ENDPOINTKIT_HOST") or "0.0.0.0",
            grpc_port=grpc_port or None,
            port=_int(env, 8080, "ENDPOINTKIT_PORT", "AIP_HTTP_PORT", "SAGEMAKER_BIND_TO_PORT"),
            uds=env.get("ENDPOINTKIT_UDS") or None,
            model_dir=_first(env, "ENDPOINTKIT_MODEL_DIR", "AIP_STORAGE_URI", "SM_MODEL_DIR")
            or "/opt/ml/model",
            workers=max(
                1,
                _int(env, _cpu_count(), "ENDPOINTKIT_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS"),
            ),
            predictor=env.get("ENDPOINTKIT_PREDICTOR") or None,
            version=env.get("ENDPOINTKIT_VERSION") or None,
            model_name=env.get("ENDPOINTKIT_MODEL_NAME") or "model",
            health_route=_route(env.get("AIP_HEALTH_ROUTE"), "/health"),
            predict_route=_route(env.get("AIP_PREDICT_ROUTE"), "/predict"),
            sagemaker_max_bytes=sm_max,
            vertex_max_bytes=_int(env, VERTEX_MAX_BYTES, "ENDPOINTKIT_VERTEX_MAX_REQUEST_BYTES"),
            oip_max_bytes=_int(env, sm_max, "ENDPOINTKIT_OIP_MAX_REQUEST_BYTES"),
            max_in_flight=max(1, _int(env, 512, "ENDPOINTKIT_MAX_IN_FLIGHT")),
            max_header_bytes=max(1024, _int(env, 64 * 1024, "ENDPOINTKIT_MAX_HEADER_BYTES")),
            max_headers=max(8, _int(env, 100, "ENDPOINTKIT_MAX_HEADERS")),
            header_timeout_s=_float(env, 10.0, "ENDPOINTKIT_HEADER_TIMEOUT_S"),
            body_timeout_s=_float(env, 30.0, "ENDPOINTKIT_BODY_TIMEOUT_S"),
            request_timeout_s=_float(
                env, 60.0, "ENDPOINTKIT_REQUEST_TIMEOUT_S", "SAGEMAKER_MODEL_SERVER_TIMEOUT"
            ),
            grace_s=_float(env, 25.0, "ENDPOINTKIT_GRACE_S"),
            request_log=request_log,
            log_sample_rate=_float(env, 0.01, "ENDPOINTKIT_LOG_SAMPLE_RATE"),
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json",
            max_batch_size=batch_size or None,
            max_latency_ms=latency if latency >= 0 else None,
            batch_strategy=strategy
            if strategy in ("SINGLE_RECORD", "MULTI_RECORD")
            else "MULTI_RECORD",
            max_concurrent_transforms=_int(env, 1, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"),
            max_payload_mb=payload_mb or 6,
            env=env,
        )
