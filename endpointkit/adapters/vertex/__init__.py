"""Google Vertex AI backend, on the `google.cloud.aiplatform_v1` GAPIC clients.

Mapping (research/vertex.md section 2):

- An endpoint is a Vertex Endpoint whose ID is the endpoint name, labelled
  `managed-by=endpointkit`; endpoints without that label are never read or changed.
- A version is a Model Registry version of the Model whose ID is the endpoint name plus a
  DeployedModel whose display name is the version name (`_registry`). Traffic splits map
  version names to deployed-model IDs; `"0"` stands for the model being deployed.
- Local model directories are staged to `staging_bucket`, where each endpoint's history lives
  too (`_storage`); without a bucket, history is derived from the live endpoint.

Long-running operations run in a background thread per change (`_operations`); while one runs,
the endpoint reports Creating/Updating/Deleting with the operation it waits on (Vertex itself
has no endpoint status), so `wait` polls `get` like any backend. A failed deploy removes the
Model version it uploaded, leaves the split untouched, records a "failed" event and reports
the operation's error with the container's last error lines from Cloud Logging (`_logs`).

Autoscaling holds replica counts and metric targets only: cooldowns given explicitly are not
applied, with a `SettingIgnoredWarning` that names the field and the backend.

Invocation (`_runtime`): `invoke` posts raw bytes to `:rawPredict` over HTTPS; `predict` uses
the GAPIC client, whose protobuf Values turn **integers into floats** (and lose precision above
2**53). Shared public endpoints accept at most 1.5 MB per request and cannot route a request to
a chosen deployed model, so `version=` raises Unsupported. With `dedicated_endpoint=True`,
endpoints get their own DNS name, Models carry `invoke_route_prefix="/*"`, requests (up to
10 MB) go to the Invoke API, `version=` pins a deployed model and responses can stream: the
backend's `capabilities` say so.

Settings: `project`, `location` (default us-central1), `credentials` (None: Application Default
Credentials; "anonymous"; a path to a service-account key file; or a Credentials object),
`api_endpoint` and `transport` ("grpc" or "rest"; rest when api_endpoint is plain http://; a
loopback "127.0.0.1:PORT" with grpc and anonymous credentials is a plaintext gRPC emulator, whose
rawPredict goes over the RawPredict RPC, and which needs `storage_endpoint`/`logging_endpoint`),
`staging_bucket` (gs://bucket[/prefix]), `serving_image` (the endpointkit serving image in your
Artifact Registry; required unless every version names its own `image`: a version with
neither is refused before any call), `machine_type`, `service_account`, `deployment_timeout_s`,
`startup_probe` / `health_probe` (mappings of period_seconds, timeout_seconds,
failure_threshold, success_threshold, initial_delay_seconds; HTTP GET on the health route;
defaults that a version's `health` overrides, see `container_health`),
`dedicated_endpoint` (bool), `storage_endpoint`/`logging_endpoint` (default: Google's, or
`api_endpoint` when it is a local http:// emulator), `lro_timeout_s`. Environment fallbacks:
GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION/CLOUD_ML_REGION, ENDPOINTKIT_VERTEX_STAGING_BUCKET,
ENDPOINTKIT_VERTEX_SERVING_IMAGE.
"""

from __future__ import annotations

from endpointkit.adapters.vertex._health import container_health
from endpointkit.adapters.vertex.backend import (
    SettingIgnoredWarning,
    VertexBackend,
    VertexDedicatedBackend,
)

__all__ = ["SettingIgnoredWarning", "VertexBackend", "VertexDedicatedBackend", "container_health"]
